/** `keys remove`: remove a key by its SHA256 fingerprint. */
import { type Command, parse } from '../command.ts';
import { subject } from '../subject.ts';

export const keysRemoveCommand: Command = {
  name: 'keys remove',
  usage: 'keys remove FINGERPRINT [--user NAME]',
  summary: 'remove a key by its SHA256 fingerprint',
  access: 'user',
  async run(invocation) {
    const { values, positionals } = parse(invocation.args, { user: { type: 'string' } }, { min: 1, max: 1 });
    const user = subject(invocation, values.user);
    invocation.services().state.users.removeKey(user, positionals[0] as string);
    invocation.io.out(`removed key ${positionals[0]} of ${user}\n`);
    return 0;
  },
};
