/** `tokens create`: create an HTTP token; it is shown once. */
import { defineCommand } from '../command.ts';
import { subject } from '../subject.ts';

export const tokensCreateCommand = defineCommand({
  name: 'tokens create',
  summary: 'create an HTTP token; it is shown once',
  positionals: [],
  options: { note: { type: 'string', value: 'TEXT' }, user: { type: 'string', value: 'NAME' } },
  access: 'user',
  async run(invocation, { values }) {
    const user = subject(invocation, values.user);
    const { id, secret } = invocation.services().state.users.createToken(user, values.note ?? null);
    invocation.io.out(`token ${id} for ${user} (shown once; use it as the HTTP password):\n${secret}\n`);
    return 0;
  },
});
