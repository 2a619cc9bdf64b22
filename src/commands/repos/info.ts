/** `repos info`: branches, current package and grants of a repository. */
import { branches, repoNameFrom, repoPath } from '../../git/repos.ts';
import { type Command, parse } from '../command.ts';

export const reposInfoCommand: Command = {
  name: 'repos info',
  usage: 'repos info NAME [--json]',
  summary: 'branches, current package and grants of a repository',
  access: 'repo:read',
  async run({ args, io, user, services }) {
    const { values, positionals } = parse(args, { json: { type: 'boolean' } }, { min: 1, max: 1 });
    const name = repoNameFrom(positionals[0] as string);
    const { config, state } = services();
    const path = repoPath(config.paths.repos, name);
    const current = state.packages.current(name);
    const info = {
      name,
      branches: await branches(path),
      deployBranch: config.apps.branch,
      current: current ? { id: current.id, revision: current.revision, createdAt: current.createdAt } : null,
      lastBuild: state.builds.latest(name),
      grants: user.admin ? state.users.grants(name) : undefined,
    };
    if (values.json) {
      io.out(`${JSON.stringify(info, null, 2)}\n`);
      return 0;
    }
    io.out(`repository ${name} (deploys ${config.apps.branch})\n`);
    for (const b of info.branches) io.out(`  branch ${b.name}  ${b.revision.slice(0, 12)}\n`);
    io.out(`  current package: ${current ? `${current.id.slice(0, 12)} at ${current.revision.slice(0, 12)}` : 'none'}\n`);
    if (info.lastBuild) io.out(`  last build: #${info.lastBuild.id} ${info.lastBuild.status}\n`);
    for (const g of info.grants ?? []) io.out(`  ${g.user}: ${g.level}\n`);
    return 0;
  },
};
