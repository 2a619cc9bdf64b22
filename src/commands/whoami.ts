/** `whoami`: who the server takes you for. */
import { defineCommand } from './command.ts';

export const whoamiCommand = defineCommand({
  name: 'whoami',
  summary: 'show your user name and whether you are an admin',
  positionals: [],
  options: { json: { type: 'boolean' } },
  access: 'user',
  async run({ io, user }, { values }) {
    if (values.json) io.out(`${JSON.stringify({ name: user.name, admin: user.admin })}\n`);
    else io.out(`${user.name}${user.admin ? ' (admin)' : ''}\n`);
    return 0;
  },
});
