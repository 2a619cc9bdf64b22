/** `rollback APP PACKAGE`: makes a kept package current again, as a new release. */
import { INDENT, STEP } from '../builder/log.ts';
import { rollBack } from '../core/packages.ts';
import { defineCommand } from './command.ts';

export const rollbackCommand = defineCommand({
  name: 'rollback',
  summary: 'make a kept package of APP current again (a new release); PACKAGE: an id or a unique prefix of 7+ characters',
  positionals: [{ name: 'APP', repo: true }, { name: 'PACKAGE' }],
  options: {},
  access: 'repo:write',
  async run({ io, user, services }, { args, repo }) {
    const out = { step: (text: string) => io.out(`${STEP}${text}\n`), output: (text: string) => io.out(`${INDENT}${text}\n`) };
    // No caller's signal: once the release is made, its deploy runs to its end (apps.deploy.timelimit bounds
    // it); one cut short by a caller who went away would leave the host and the server disagreeing.
    const { release, package: pkg } = await rollBack(services(), repo.name, args.PACKAGE, user.name, out);
    io.out(`${repo.name} v${release.version}: package ${pkg.id.slice(0, 12)} (revision ${pkg.revision.slice(0, 12)}) is now current\n`);
    return 0;
  },
});
