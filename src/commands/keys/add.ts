/** `keys add`: add the public key given on standard input. */
import { KEY_INPUT_BYTES, parsePublicKey } from '../../users/public-key.ts';
import { defineCommand } from '../command.ts';
import { subject } from '../subject.ts';

export const keysAddCommand = defineCommand({
  name: 'keys add',
  summary: 'add the public key given on standard input',
  positionals: [],
  options: { user: { type: 'string', value: 'NAME' } },
  stdin: { bytes: KEY_INPUT_BYTES, what: 'key.pub' },
  access: 'user',
  async run(invocation, { values, input }) {
    const user = subject(invocation, values.user);
    const key = parsePublicKey(await input());
    invocation.services().state.users.addKey(user, key);
    invocation.io.out(`added key ${key.fingerprint} for ${user}\n`);
    return 0;
  },
});
