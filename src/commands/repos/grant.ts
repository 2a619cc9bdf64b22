/** `repos grant`: let a user read (clone, fetch) or write (push, build) a repository. */
import { grantAccess } from '../../core/repos.ts';
import { UsageError, defineCommand } from '../command.ts';

export const reposGrantCommand = defineCommand({
  name: 'repos grant',
  summary: 'let a user read (clone, fetch) or write (push, build) a repository',
  positionals: [{ name: 'REPO', repo: true }, { name: 'USER' }, { name: 'LEVEL', shown: 'read|write' }],
  options: {},
  access: 'admin',
  async run({ io, services }, { args }) {
    const level = args.LEVEL;
    if (level !== 'read' && level !== 'write') throw new UsageError(`LEVEL: expected read or write, got ${JSON.stringify(level)}`);
    grantAccess(services(), args.REPO, args.USER, level);
    io.out(`${args.USER} may now ${level} ${args.REPO}\n`);
    return 0;
  },
});
