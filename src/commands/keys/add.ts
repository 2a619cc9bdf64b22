/** `keys add`: add the public key given on standard input. */
import { parsePublicKey } from '../../users/public-key.ts';
import { type Command, parse } from '../command.ts';
import { subject } from '../subject.ts';

export const keysAddCommand: Command = {
  name: 'keys add',
  usage: 'keys add [--user NAME] < key.pub',
  summary: 'add the public key given on standard input',
  access: 'user',
  async run(invocation) {
    const { values } = parse(invocation.args, { user: { type: 'string' } }, { min: 0, max: 0 });
    const user = subject(invocation, values.user);
    const key = parsePublicKey(await invocation.io.input());
    invocation.services().state.users.addKey(user, key);
    invocation.io.out(`added key ${key.fingerprint} for ${user}\n`);
    return 0;
  },
};
