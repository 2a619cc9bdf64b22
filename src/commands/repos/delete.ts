/** `repos delete`: delete a repository and everything kept of its app. */
import { deleteRepository } from '../../core/repos.ts';
import { UsageError, defineCommand } from '../command.ts';

export const reposDeleteCommand = defineCommand({
  name: 'repos delete',
  summary: 'delete a repository with its grants, builds, logs and packages',
  positionals: [{ name: 'NAME', repo: true }],
  options: { yes: { type: 'boolean' } },
  access: 'admin',
  async run({ io, user, services }, { values, args }) {
    if (!values.yes) throw new UsageError(`deleting ${args.NAME} cannot be undone: add --yes`);
    const gone = await deleteRepository(services(), args.NAME, user.name);
    io.out(`deleted repository ${gone.name} (${gone.builds} builds, ${gone.packages} packages)\n`);
    return 0;
  },
});
