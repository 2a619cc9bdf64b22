/** `users remove`: remove a user with their keys, tokens and grants. */
import { defineCommand } from '../command.ts';

export const usersRemoveCommand = defineCommand({
  name: 'users remove',
  summary: 'remove a user with their keys, tokens and grants',
  positionals: [{ name: 'NAME' }],
  options: {},
  access: 'admin',
  async run({ io, services }, { args }) {
    services().state.users.remove(args.NAME);
    io.out(`removed user ${args.NAME}\n`);
    return 0;
  },
});
