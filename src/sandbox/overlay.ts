/**
 * A build's root as an overlayfs: cached trees (read-only layers, top first)
 * under an upper layer on the build's own volume, so that what the build
 * writes is what the disk limit measures, and no layer below is ever written.
 * Mounted with index=on (a copied-up hard link stays one file with all its
 * names), redirect_dir=off and metacopy=off (every change is plain files in
 * the upper layer: renaming a lower folder copies it), and volatile (the
 * upper layer is thrown away or copied after unmount, never reused mounted).
 * What the build sees and archives is the merged view: whiteouts and opaque
 * folders exist only in the upper layer, never in a package.
 */
import { chmod, chown, lstat, mkdir, readdir, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cleanup } from '../process/cleanup.ts';
import { run, runChecked as must } from '../process/run.ts';

const OPTIONS = 'index=on,redirect_dir=off,metacopy=off,xino=auto,volatile';

export interface Overlay {
  /** The upper layer: everything the build changed, with its whiteouts and opaque marks. */
  upper: string;
  /**
   * Unmounts (once; the cleanup stack does it too). False when it had to be
   * detached lazily: something still holds the tree, which may change yet.
   */
  unmount(): Promise<boolean>;
  /**
   * Whether the build changed a file that has hard links in a lower layer:
   * overlayfs kept its names together through its index, which the upper
   * layer alone does not hold, so that upper layer is no layer to build on.
   */
  copiedUpHardLinks(): Promise<boolean>;
}

/**
 * Mounts `lowers` (top first) with a new upper layer in `dir` (on the
 * build's volume) at `target`. The layers are named through symlinks in
 * `dir`, so no path of the server's folders goes into the mount options
 * (where a comma or colon would change their meaning). The unmount is pushed
 * onto `cleanup`.
 */
export async function mountOverlay(dir: string, lowers: readonly string[], target: string, cleanup: Cleanup): Promise<Overlay> {
  if (lowers.length === 0) throw new Error('an overlay needs a lower layer');
  const upper = join(dir, 'upper');
  const work = join(dir, 'work');
  const links = join(dir, 'lower');
  await mkdir(links, { mode: 0o700 });
  await mkdir(work, { mode: 0o700 });
  await mkdir(upper);
  // The merged root shows the upper layer's own mode, owner and times: the top tree's, as a full unpack would give.
  const top = await lstat(lowers[0] as string);
  await chown(upper, top.uid, top.gid);
  await chmod(upper, top.mode & 0o7777);
  // To the nanosecond (a Date holds milliseconds): the root's entry in a package must not depend on the cache.
  await must('cannot prepare the build tree', 'touch', ['--no-dereference', `--reference=${lowers[0] as string}`, '--', upper]);
  const names = await linkLowers(links, lowers);
  await must('cannot mount the build tree', 'mount', ['-t', 'overlay', '-o', `lowerdir=${names},upperdir=upper,workdir=work,${OPTIONS}`, '--', 'overlay', target], {
    cwd: dir,
  });
  let mounted = true;
  let clean = true;
  const unmount = async () => {
    if (!mounted) return clean;
    const result = await run('umount', ['--', target]);
    // Busy (a process that should be gone): detach it anyway.
    if (!result.ok) {
      await must('cannot unmount the build tree', 'umount', ['--lazy', '--', target]);
      clean = false;
    }
    mounted = false;
    return clean;
  };
  cleanup.defer('the build tree overlay', async () => {
    await unmount();
  });
  // The kernel mounts without the index where a lower layer's file system cannot have one (it only warns):
  // hard links would then come apart on copy-up, and the package would differ from an unpacked build's.
  // The index folder in the work folder exists only when the index is on.
  const indexed = await stat(join(work, 'index')).then(
    (info) => info.isDirectory(),
    () => false,
  );
  if (!indexed) {
    await unmount();
    throw new Error('overlayfs mounted the cached tree without its index (index=on) on this file system');
  }
  return {
    upper,
    unmount,
    copiedUpHardLinks: async () => (await readdir(join(work, 'index'))).some((name) => !name.startsWith('#')),
  };
}

/** Names `lowers` (top first) through symlinks lower/0, lower/1 ... in `links`; returns them as a lowerdir list relative to its parent. */
async function linkLowers(links: string, lowers: readonly string[]): Promise<string> {
  const names: string[] = [];
  for (const [index, lower] of lowers.entries()) {
    await symlink(lower, join(links, String(index)));
    names.push(`lower/${index}`);
  }
  return names.join(':');
}

/**
 * Mounts `lowers` (top first; whiteouts and opaque folders in them applied)
 * read-only at `target`, with the layers named through symlinks in `dir`
 * like mountOverlay's; the unmount is pushed onto `cleanup` and returned.
 */
export async function mountReadOnly(dir: string, lowers: readonly string[], target: string, cleanup: Cleanup): Promise<() => Promise<void>> {
  if (lowers.length < 2) throw new Error('a read-only overlay needs two layers or more');
  const links = join(dir, 'lower');
  await mkdir(links, { mode: 0o700 });
  const names = await linkLowers(links, lowers);
  await must('cannot mount the layers read-only', 'mount', ['-t', 'overlay', '-o', `ro,lowerdir=${names},redirect_dir=off,metacopy=off`, '--', 'overlay', target], { cwd: dir });
  let mounted = true;
  const unmount = async () => {
    if (!mounted) return;
    mounted = false;
    await must('cannot unmount the read-only layers', 'umount', ['--', target]);
  };
  cleanup.defer('the read-only layers', unmount);
  return unmount;
}
