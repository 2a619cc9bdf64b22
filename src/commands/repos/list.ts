/** `repos list`: list the repositories you can read. */
import { readableRepositories } from '../../core/repos.ts';
import { defineCommand } from '../command.ts';
import { printJson } from '../output.ts';

export const reposListCommand = defineCommand({
  name: 'repos list',
  summary: 'list the repositories you can read',
  positionals: [],
  options: { json: { type: 'boolean' } },
  access: 'user',
  async run({ io, user, services }, { values }) {
    const repos = await readableRepositories(services(), user);
    if (values.json) await printJson(io, repos);
    else for (const r of repos) io.out(`${r.name}  ${r.access}  ${r.current ? `package ${r.current.slice(0, 12)}` : 'no package yet'}\n`);
    return 0;
  },
});
