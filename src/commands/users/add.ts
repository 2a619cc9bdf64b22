/** `users add`: add a user, with the public key given on standard input if any. */
import { parsePublicKey } from '../../users/public-key.ts';
import { type Command, parse } from '../command.ts';

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
