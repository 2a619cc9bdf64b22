/** `users remove`: remove a user with their keys, tokens and grants. */
import { type Command, parse } from '../command.ts';

export const usersRemoveCommand: Command = {
  name: 'users remove',
  usage: 'users remove NAME',
  summary: 'remove a user with their keys, tokens and grants',
  access: 'admin',
  async run({ args, io, services }) {
    const { positionals } = parse(args, {}, { min: 1, max: 1 });
    services().state.users.remove(positionals[0] as string);
    io.out(`removed user ${positionals[0]}\n`);
    return 0;
  },
};
