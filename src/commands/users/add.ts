/** `users add`: add a user, with the public key given on standard input if any. */
import { KEY_INPUT_BYTES, parsePublicKey } from '../../users/public-key.ts';
import { defineCommand } from '../command.ts';

export const usersAddCommand = defineCommand({
  name: 'users add',
  summary: 'add a user, with the public key given on standard input if any',
  positionals: [{ name: 'NAME' }],
  options: { admin: { type: 'boolean' } },
  stdin: { bytes: KEY_INPUT_BYTES, what: 'key.pub (optional)' },
  access: 'admin',
  async run({ io, services }, { values, args, input }) {
    const name = args.NAME;
    const text = (await input()).trim();
    const key = text ? parsePublicKey(text) : null;
    const { state } = services();
    state.db.transaction(() => {
      state.users.add(name, values.admin);
      if (key) state.users.addKey(name, key);
    })();
    io.out(`added user ${name}${values.admin ? ' (admin)' : ''}${key ? ` with key ${key.fingerprint}` : ''}\n`);
    return 0;
  },
});
