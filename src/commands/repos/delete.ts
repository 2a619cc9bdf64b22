/** `repos delete`: delete a repository and its grants (its packages' records are kept). */
import { rm } from 'node:fs/promises';
import { repoNameFrom, repoPath } from '../../git/repos.ts';
import { type Command, UsageError, parse } from '../command.ts';

export const reposDeleteCommand: Command = {
  name: 'repos delete',
  usage: 'repos delete NAME --yes',
  summary: "delete a repository and its grants (its packages' records are kept)",
  access: 'admin',
  async run({ args, io, services }) {
    const { values, positionals } = parse(args, { yes: { type: 'boolean' } }, { min: 1, max: 1 });
    const name = repoNameFrom(positionals[0] as string);
    if (!values.yes) throw new UsageError(`deleting ${name} cannot be undone: add --yes`);
    const { config, state } = services();
    const path = repoPath(config.paths.repos, name);
    await rm(path, { recursive: true, force: true });
    state.users.forgetRepo(name);
    io.out(`deleted repository ${name}\n`);
    return 0;
  },
};
