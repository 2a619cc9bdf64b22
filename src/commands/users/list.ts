/** `users list`: list users, their admin flag and key count. */
import { type Command, parse } from '../command.ts';

export const usersListCommand: Command = {
  name: 'users list',
  usage: 'users list [--json]',
  summary: 'list users, their admin flag and key count',
  access: 'admin',
  async run({ args, io, services }) {
    const { values } = parse(args, { json: { type: 'boolean' } }, { min: 0, max: 0 });
    const { state } = services();
    const users = state.users.list().map((u) => ({ ...u, keys: state.users.keys(u.name).length }));
    if (values.json) io.out(`${JSON.stringify(users, null, 2)}\n`);
    else for (const u of users) io.out(`${u.name}${u.admin ? ' (admin)' : ''}  ${u.keys} key${u.keys === 1 ? '' : 's'}\n`);
    return 0;
  },
};
