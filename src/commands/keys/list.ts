/** `keys list`: list your SSH keys (admins: anyone's). */
import { type Command, parse } from '../command.ts';
import { subject } from '../subject.ts';

export const keysListCommand: Command = {
  name: 'keys list',
  usage: 'keys list [--user NAME] [--json]',
  summary: 'list your SSH keys (admins: anyone\'s)',
  access: 'user',
  async run(invocation) {
    const { values } = parse(invocation.args, { user: { type: 'string' }, json: { type: 'boolean' } }, { min: 0, max: 0 });
    const keys = invocation.services().state.users.keys(subject(invocation, values.user));
    if (values.json) invocation.io.out(`${JSON.stringify(keys, null, 2)}\n`);
    else for (const k of keys) invocation.io.out(`${k.fingerprint}  ${k.algorithm}  ${k.comment ?? ''}\n`);
    return 0;
  },
};
