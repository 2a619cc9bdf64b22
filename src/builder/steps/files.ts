/**
 * The metadata's `files`: path -> content, written into the app folder before
 * the setup actions. A path that leaves apps.home, directly (`../`, an absolute
 * path elsewhere) or through a symlink anywhere on its way, is a user error.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open } from 'node:fs/promises';
import { posix } from 'node:path';
import type { BuildContext } from '../context.ts';
import { userError } from '../errors.ts';

/** The path inside the chroot that a `files` key names, or a user error. */
export function fileTarget(home: string, key: string): string {
  const target = posix.normalize(posix.isAbsolute(key) ? key : posix.join(home, key));
  if (!target.startsWith(`${home}/`) || target.endsWith('/')) {
    throw userError(`files[${JSON.stringify(key)}]: the path must stay inside the app folder ${home}`);
  }
  return target;
}

export async function writeAppFiles(ctx: BuildContext): Promise<void> {
  const entries = Object.entries(ctx.metadata.files);
  if (entries.length === 0) return;
  const home = ctx.settings.home;
  ctx.log.step(`Writing ${entries.length} file${entries.length === 1 ? '' : 's'} from the metadata`);
  for (const [key, content] of entries) {
    const target = fileTarget(home, key);
    try {
      await writeNoFollow(ctx.root, target, content, key);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // The system's own message names the host path of the build's tree: say it in the chroot's terms.
      if (code === undefined) throw error;
      throw userError(`files[${JSON.stringify(key)}]: cannot write ${target}: ${ERRNO_TEXT[code] ?? code}`, { cause: error });
    }
    ctx.log.output(target);
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENAMETOOLONG: 'a name in the path is too long',
  ENOSPC: 'no space is left',
  EDQUOT: 'no space is left',
  EACCES: 'permission denied',
  EROFS: 'read-only file system',
  ELOOP: 'a symlink is in the way',
};

/** Writes root+target, refusing to pass through or write to a symlink at any level. */
async function writeNoFollow(root: string, target: string, content: string, key: string): Promise<void> {
  const parts = target.split('/').filter(Boolean);
  let path = root;
  for (const [index, part] of parts.entries()) {
    path = `${path}/${part}`;
    const last = index === parts.length - 1;
    const info = await lstat(path).catch(() => null);
    if (info?.isSymbolicLink()) {
      throw userError(`files[${JSON.stringify(key)}]: /${parts.slice(0, index + 1).join('/')} is a symlink; files are never written through symlinks`);
    }
    if (!last) {
      if (!info) await mkdir(path, { mode: 0o755 });
      else if (!info.isDirectory()) throw userError(`files[${JSON.stringify(key)}]: /${parts.slice(0, index + 1).join('/')} is not a folder`);
    } else if (info && !info.isFile()) {
      throw userError(`files[${JSON.stringify(key)}]: ${target} exists and is not a regular file`);
    }
  }
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
  try {
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
}
