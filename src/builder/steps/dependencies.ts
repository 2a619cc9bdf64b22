/**
 * Step 3 - App dependencies. The OS packages the metadata asks for
 * (`os.<distro>.packages` and `os.<distro>.<version>.packages`), each with the
 * admin's install command when it is missing. A package that cannot be
 * installed is a user error.
 */
import type { BuildContext } from '../context.ts';
import { systemError, userError } from '../errors.ts';
import { appPackages } from '../plan.ts';
import { installPackages } from './os-packages.ts';

export async function installAppPackages(ctx: BuildContext): Promise<void> {
  const asked = Object.keys(ctx.metadata.os);
  if (ctx.os === null) {
    if (asked.length === 0) return;
    const problem = 'cannot tell which OS packages to install: /etc/os-release cannot be read in the';
    // The system image is the admin's; the current package is what the app's builds made of it.
    if (ctx.fresh) throw systemError(`${problem} system image`);
    throw userError(`${problem} current package (a fresh build, -o fresh, starts from the system image again)`);
  }
  const { os } = ctx;
  const names = appPackages(ctx.metadata, os);
  if (names.length === 0) {
    if (asked.length > 0 && !asked.includes(os.id)) {
      ctx.log.step(`No OS packages for ${os.id || 'this system'} ${os.versionId} (metadata lists: ${asked.join(', ')})`);
    }
    return;
  }
  ctx.log.step(`Installing OS packages: ${names.join(' ')}`);
  await installPackages(ctx, 'user', names);
}
