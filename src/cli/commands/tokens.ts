/** `tokens create|list|revoke`: HTTP tokens (Basic auth password) of a user. */
import { type Command, parse } from '../command.ts';
import { keySubject as subject } from './keys.ts';

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

export const tokensListCommand: Command = {
  name: 'tokens list',
  usage: 'tokens list [--user NAME] [--json]',
  summary: 'list tokens (not their secrets)',
  access: 'user',
  async run(invocation) {
    const { values } = parse(invocation.args, { user: { type: 'string' }, json: { type: 'boolean' } }, { min: 0, max: 0 });
    const tokens = invocation.services().state.users.tokens(subject(invocation, values.user));
    if (values.json) invocation.io.out(`${JSON.stringify(tokens, null, 2)}\n`);
    else for (const t of tokens) invocation.io.out(`${t.id}  created ${t.createdAt}  last used ${t.lastUsedAt ?? 'never'}  ${t.note ?? ''}\n`);
    return 0;
  },
};

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
