/** `repos grant`: let a user read (clone, fetch) or write (push, build) a repository. */
import { repoNameFrom, repoPath } from '../../git/repos.ts';
import { type Command, UsageError, parse } from '../command.ts';

export const reposGrantCommand: Command = {
  name: 'repos grant',
  usage: 'repos grant REPO USER read|write',
  summary: 'let a user read (clone, fetch) or write (push, build) a repository',
  access: 'admin',
  async run({ args, io, services }) {
    const { positionals } = parse(args, {}, { min: 3, max: 3 });
    const [repoArg, user, level] = positionals as [string, string, string];
    if (level !== 'read' && level !== 'write') throw new UsageError(`level: expected read or write, got ${JSON.stringify(level)}`);
    const name = repoNameFrom(repoArg);
    const { config, state } = services();
    repoPath(config.paths.repos, name);
    state.users.grant(name, user, level);
    io.out(`${user} may now ${level} ${name}\n`);
    return 0;
  },
};
