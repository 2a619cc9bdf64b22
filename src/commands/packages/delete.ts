/** `packages delete APP PACKAGE`: deletes a kept package's file (never the current one); its record stays. */
import { openRepo } from '../../core/access.ts';
import { deletePackageFile } from '../../core/packages.ts';
import { formatBytes } from '../../builder/log.ts';
import { defineCommand } from '../command.ts';

export const packagesDeleteCommand = defineCommand({
  name: 'packages delete',
  summary: "delete the file of one of APP's kept packages (not the current one); the record stays",
  positionals: [{ name: 'APP', repo: true }, { name: 'PACKAGE' }],
  options: {},
  access: 'admin',
  async run({ io, user, services }, { args }) {
    const all = services();
    const repo = openRepo(all, user, args.APP, 'write');
    const pkg = await deletePackageFile(all, repo.name, args.PACKAGE);
    io.out(`deleted the file of package ${pkg.id.slice(0, 12)} of ${repo.name} (${formatBytes(pkg.bytes)}); its record stays\n`);
    return 0;
  },
});
