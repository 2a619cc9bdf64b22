/** `repos info`: branches, current package and grants of a repository. */
import { describeRepository } from '../../core/repos.ts';
import type { Repo } from '../../core/access.ts';
import { defineCommand } from '../command.ts';

export const reposInfoCommand = defineCommand({
  name: 'repos info',
  summary: 'branches, current package and grants of a repository',
  positionals: [{ name: 'NAME', repo: true }],
  options: { json: { type: 'boolean' } },
  access: 'repo:read',
  async run({ io, user, services }, { values, repo }) {
    const info = await describeRepository(services(), user, repo as Repo);
    if (values.json) {
      io.out(`${JSON.stringify(info, null, 2)}\n`);
      return 0;
    }
    io.out(`repository ${info.name} (deploys ${info.deployBranch})\n`);
    for (const b of info.branches) io.out(`  branch ${b.name}  ${b.revision.slice(0, 12)}\n`);
    io.out(`  current package: ${info.current ? `${info.current.id.slice(0, 12)} at ${info.current.revision.slice(0, 12)}` : 'none'}\n`);
    if (info.lastBuild) io.out(`  last build: #${info.lastBuild.id} ${info.lastBuild.status}\n`);
    for (const g of info.grants ?? []) io.out(`  ${g.user}: ${g.level}\n`);
    return 0;
  },
});
