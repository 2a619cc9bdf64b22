/** `rollback APP PACKAGE`: makes a kept package current again, as a new release. */
import { rollBack } from '../core/packages.ts';
import { defineCommand } from './command.ts';

export const rollbackCommand = defineCommand({
  name: 'rollback',
  summary: 'make a kept package of APP current again (a new release); PACKAGE: an id or a unique prefix of 7+ characters',
  positionals: [{ name: 'APP', repo: true }, { name: 'PACKAGE' }],
  options: {},
  access: 'repo:write',
  async run({ io, user, services }, { args, repo }) {
    const { release, package: pkg } = await rollBack(services(), repo.name, args.PACKAGE, user.name);
    io.out(`${repo.name} v${release.version}: package ${pkg.id.slice(0, 12)} (revision ${pkg.revision.slice(0, 12)}) is now current\n`);
    return 0;
  },
});
