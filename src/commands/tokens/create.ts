/** `tokens create`: create an HTTP token; it is shown once. */
import { type Command, parse } from '../command.ts';
import { subject } from '../subject.ts';

export const tokensCreateCommand: Command = {
  name: 'tokens create',
  usage: 'tokens create [--note TEXT] [--user NAME]',
  summary: 'create an HTTP token; it is shown once',
  access: 'user',
  async run(invocation) {
    const { values } = parse(invocation.args, { note: { type: 'string' }, user: { type: 'string' } }, { min: 0, max: 0 });
    const user = subject(invocation, values.user);
    const { id, secret } = invocation.services().state.users.createToken(user, values.note ?? null);
    invocation.io.out(`token ${id} for ${user} (shown once; use it as the HTTP password):\n${secret}\n`);
    return 0;
  },
};
