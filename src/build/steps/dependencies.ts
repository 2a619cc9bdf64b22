/**
 * Step 3 - App dependencies. The OS packages the metadata asks for
 * (`os.<distro>.packages` and `os.<distro>.<version>.packages`), each with the
 * admin's install command. A package that cannot be installed is a user error.
 */
import type { BuildContext } from '../context.ts';
import { appPackages } from '../plan.ts';
import { installPackage } from './image.ts';

export async function installAppPackages(ctx: BuildContext): Promise<void> {
  const os = ctx.os ?? { id: '', versionId: '', codename: '' };
  const names = appPackages(ctx.metadata, os);
  const asked = Object.keys(ctx.metadata.os);
  if (names.length === 0) {
    if (asked.length > 0 && !asked.includes(os.id)) {
      ctx.log.step(`No OS packages for ${os.id || 'this system'} ${os.versionId} (metadata lists: ${asked.join(', ')})`);
    }
    return;
  }
  ctx.log.step(`Installing OS packages: ${names.join(' ')}`);
  for (const name of names) await installPackage(ctx, 'user', name);
}
