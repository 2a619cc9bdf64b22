/** `repos revoke`: remove a user's access to a repository. */
import { revokeAccess } from '../../core/repos.ts';
import { defineCommand } from '../command.ts';

export const reposRevokeCommand = defineCommand({
  name: 'repos revoke',
  summary: "remove a user's access to a repository",
  positionals: [{ name: 'REPO', repo: true }, { name: 'USER' }],
  options: {},
  access: 'admin',
  async run({ io, services }, { args }) {
    revokeAccess(services(), args.REPO, args.USER);
    io.out(`${args.USER} has no access to ${args.REPO} any more\n`);
    return 0;
  },
});
