/** `repos revoke`: remove a user's access to a repository. */
import { repoNameFrom } from '../../git/repos.ts';
import { type Command, parse } from '../command.ts';

export const reposRevokeCommand: Command = {
  name: 'repos revoke',
  usage: 'repos revoke REPO USER',
  summary: "remove a user's access to a repository",
  access: 'admin',
  async run({ args, io, services }) {
    const { positionals } = parse(args, {}, { min: 2, max: 2 });
    const [repoArg, user] = positionals as [string, string];
    services().state.users.revoke(repoNameFrom(repoArg), user);
    io.out(`${user} has no access to ${repoArg} any more\n`);
    return 0;
  },
};
