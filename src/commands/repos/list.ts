/** `repos list`: list the repositories you can read. */
import { listRepos } from '../../git/repos.ts';
import { allows } from '../../state/users.ts';
import { type Command, parse } from '../command.ts';

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
