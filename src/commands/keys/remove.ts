/** `keys remove`: remove a key by its SHA256 fingerprint. */
import { defineCommand } from '../command.ts';
import { subject } from '../subject.ts';

export const keysRemoveCommand = defineCommand({
  name: 'keys remove',
  summary: 'remove a key by its SHA256 fingerprint',
  positionals: [{ name: 'FINGERPRINT' }],
  options: { user: { type: 'string', value: 'NAME' } },
  access: 'user',
  async run(invocation, { values, args }) {
    const user = subject(invocation, values.user);
    invocation.services().state.users.removeKey(user, args.FINGERPRINT);
    invocation.io.out(`removed key ${args.FINGERPRINT} of ${user}\n`);
    return 0;
  },
});
