/** `keys list`: list your SSH keys (admins: anyone's). */
import { defineCommand } from '../command.ts';
import { subject } from '../subject.ts';
import { printJson } from '../output.ts';

export const keysListCommand = defineCommand({
  name: 'keys list',
  summary: "list your SSH keys (admins: anyone's)",
  positionals: [],
  options: { user: { type: 'string', value: 'NAME' }, json: { type: 'boolean' } },
  access: 'user',
  async run(invocation, { values }) {
    const keys = invocation.services().state.users.keys(subject(invocation, values.user));
    if (values.json) await printJson(invocation.io, keys);
    else for (const k of keys) invocation.io.out(`${k.fingerprint}  ${k.algorithm}  ${k.comment ?? ''}\n`);
    return 0;
  },
});
