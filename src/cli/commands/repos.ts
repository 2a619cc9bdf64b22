/** `repos list|create|delete|info|grant|revoke`: the apps' git repositories and who may use them. */
import { rm } from 'node:fs/promises';
import { branches, createRepo, listRepos, repoNameFrom, repoPath } from '../../git/repos.ts';
import { allows } from '../../state/users.ts';
import { type Command, CommandError, UsageError, parse } from '../command.ts';

export const reposListCommand: Command = {
  name: 'repos list',
  usage: 'repos list [--json]',
  summary: 'list the repositories you can read',
  access: 'user',
  async run({ args, io, user, services }) {
    const { values } = parse(args, { json: { type: 'boolean' } }, { min: 0, max: 0 });
    const { config, state } = services();
    const repos = (await listRepos(config.paths.repos))
      .map((name) => ({ name, access: state.users.accessTo(user, name), current: state.packages.current(name)?.id ?? null }))
      .filter((repo) => allows(repo.access, 'read'));
    if (values.json) io.out(`${JSON.stringify(repos, null, 2)}\n`);
    else for (const r of repos) io.out(`${r.name}  ${r.access}  ${r.current ? `package ${r.current.slice(0, 12)}` : 'no package yet'}\n`);
    return 0;
  },
};

export const reposCreateCommand: Command = {
  name: 'repos create',
  usage: 'repos create NAME',
  summary: 'create an empty repository to push an app into',
  access: 'admin',
  async run({ args, io, services }) {
    const { positionals } = parse(args, {}, { min: 1, max: 1 });
    const name = repoNameFrom(positionals[0] as string);
    const { config } = services();
    const existed = await listRepos(config.paths.repos).then((all) => all.includes(name));
    if (existed) throw new CommandError(`repository ${name} exists already`);
    await createRepo(config.paths.repos, name, config.apps.branch);
    io.out(`created repository ${name}; push to it with: git push <server>/${name}.git ${config.apps.branch}\n`);
    return 0;
  },
};

export const reposDeleteCommand: Command = {
  name: 'repos delete',
  usage: 'repos delete NAME --yes',
  summary: "delete a repository and its grants (its packages' records are kept)",
  access: 'admin',
  async run({ args, io, services }) {
    const { values, positionals } = parse(args, { yes: { type: 'boolean' } }, { min: 1, max: 1 });
    const name = repoNameFrom(positionals[0] as string);
    if (!values.yes) throw new UsageError(`deleting ${name} cannot be undone: add --yes`);
    const { config, state } = services();
    const path = repoPath(config.paths.repos, name);
    await rm(path, { recursive: true, force: true });
    state.users.forgetRepo(name);
    io.out(`deleted repository ${name}\n`);
    return 0;
  },
};

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

export const reposGrantCommand: Command = {
  name: 'repos grant',
  usage: 'repos grant REPO USER read|write',
  summary: 'let a user read (clone, fetch) or write (push, build) a repository',
  access: 'admin',
  async run({ args, io, services }) {
    const { positionals } = parse(args, {}, { min: 3, max: 3 });
    const [repoArg, user, level] = positionals as [string, string, string];
    if (level !== 'read' && level !== 'write') throw new UsageError(`level: expected read or write, got ${JSON.stringify(level)}`);
    const name = repoNameFrom(repoArg);
    const { config, state } = services();
    repoPath(config.paths.repos, name);
    state.users.grant(name, user, level);
    io.out(`${user} may now ${level} ${name}\n`);
    return 0;
  },
};

export const reposRevokeCommand: Command = {
  name: 'repos revoke',
  usage: 'repos revoke REPO USER',
  summary: "remove a user's access to a repository",
  access: 'admin',
  async run({ args, io, services }) {
    const { positionals } = parse(args, {}, { min: 2, max: 2 });
    const [repoArg, user] = positionals as [string, string];
    services().state.users.revoke(repoNameFrom(repoArg), user);
    io.out(`${user} has no access to ${repoArg} any more\n`);
    return 0;
  },
};
