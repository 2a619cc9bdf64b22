/** `whoami`: who the server takes you for. */
import { type Command, parse } from './command.ts';

export const whoamiCommand: Command = {
  name: 'whoami',
  usage: 'whoami [--json]',
  summary: 'show your user name and whether you are an admin',
  access: 'user',
  async run({ args, io, user }) {
    const { values } = parse(args, { json: { type: 'boolean' } }, { min: 0, max: 0 });
    if (values.json) io.out(`${JSON.stringify({ name: user.name, admin: user.admin })}\n`);
    else io.out(`${user.name}${user.admin ? ' (admin)' : ''}\n`);
    return 0;
  },
};
