/** `tokens list`: list tokens (not their secrets). */
import { defineCommand } from '../command.ts';
import { subject } from '../subject.ts';
import { printJson } from '../output.ts';

export const tokensListCommand = defineCommand({
  name: 'tokens list',
  summary: 'list tokens (not their secrets)',
  positionals: [],
  options: { user: { type: 'string', value: 'NAME' }, json: { type: 'boolean' } },
  access: 'user',
  async run(invocation, { values }) {
    const tokens = invocation.services().state.users.tokens(subject(invocation, values.user));
    if (values.json) await printJson(invocation.io, tokens);
    else for (const t of tokens) invocation.io.out(`${t.id}  created ${t.createdAt}  last used ${t.lastUsedAt ?? 'never'}  ${t.note ?? ''}\n`);
    return 0;
  },
});
