/** `tokens revoke`: revoke a token. */
import { type Command, parse } from '../command.ts';
import { subject } from '../subject.ts';

export const tokensRevokeCommand: Command = {
  name: 'tokens revoke',
  usage: 'tokens revoke ID [--user NAME]',
  summary: 'revoke a token',
  access: 'user',
  async run(invocation) {
    const { values, positionals } = parse(invocation.args, { user: { type: 'string' } }, { min: 1, max: 1 });
    const user = subject(invocation, values.user);
    invocation.services().state.users.revokeToken(user, positionals[0] as string);
    invocation.io.out(`revoked token ${positionals[0]} of ${user}\n`);
    return 0;
  },
};
