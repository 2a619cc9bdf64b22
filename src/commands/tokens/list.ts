/** `tokens list`: list tokens (not their secrets). */
import { type Command, parse } from '../command.ts';
import { subject } from '../subject.ts';

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
