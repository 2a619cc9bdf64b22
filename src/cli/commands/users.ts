/** `users list|add|remove`: admin-only management of users (keys: see `keys`). */
import { parsePublicKey } from '../../users/public-key.ts';
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

export const usersAddCommand: Command = {
  name: 'users add',
  usage: 'users add NAME [--admin] [< key.pub]',
  summary: 'add a user, with the public key given on standard input if any',
  access: 'admin',
  async run({ args, io, services }) {
    const { values, positionals } = parse(args, { admin: { type: 'boolean' } }, { min: 1, max: 1 });
    const name = positionals[0] as string;
    const input = (await io.input()).trim();
    const key = input ? parsePublicKey(input) : null;
    const { state } = services();
    state.db.transaction(() => {
      state.users.add(name, values.admin);
      if (key) state.users.addKey(name, key);
    })();
    io.out(`added user ${name}${values.admin ? ' (admin)' : ''}${key ? ` with key ${key.fingerprint}` : ''}\n`);
    return 0;
  },
};

export const usersRemoveCommand: Command = {
  name: 'users remove',
  usage: 'users remove NAME',
  summary: 'remove a user with their keys, tokens and grants',
  access: 'admin',
  async run({ args, io, services }) {
    const { positionals } = parse(args, {}, { min: 1, max: 1 });
    services().state.users.remove(positionals[0] as string);
    io.out(`removed user ${positionals[0]}\n`);
    return 0;
  },
};
