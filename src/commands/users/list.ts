/** `users list`: list users, their admin flag and key count. */
import { defineCommand } from '../command.ts';
import { printJson } from '../output.ts';

export const usersListCommand = defineCommand({
  name: 'users list',
  summary: 'list users, their admin flag and key count',
  positionals: [],
  options: { json: { type: 'boolean' } },
  access: 'admin',
  async run({ io, services }, { values }) {
    const { state } = services();
    const users = state.users.list().map((u) => ({ ...u, keys: state.users.keys(u.name).length }));
    if (values.json) await printJson(io, users);
    else for (const u of users) io.out(`${u.name}${u.admin ? ' (admin)' : ''}  ${u.keys} key${u.keys === 1 ? '' : 's'}\n`);
    return 0;
  },
});
