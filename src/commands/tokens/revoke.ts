/** `tokens revoke`: revoke a token. */
import { defineCommand } from '../command.ts';
import { subject } from '../subject.ts';

export const tokensRevokeCommand = defineCommand({
  name: 'tokens revoke',
  summary: 'revoke a token',
  positionals: [{ name: 'ID' }],
  options: { user: { type: 'string', value: 'NAME' } },
  access: 'user',
  async run(invocation, { values, args }) {
    const user = subject(invocation, values.user);
    invocation.services().state.users.revokeToken(user, args.ID);
    invocation.io.out(`revoked token ${args.ID} of ${user}\n`);
    return 0;
  },
});
