/**
 * A build's own file system (builder.limits.disk): a file in the build's temp
 * folder, formatted ext4 and loop-mounted, in which the build's trees live.
 * The kernel stops it at its size, so a build cannot fill the host's disk,
 * and a full volume tells the builder that the limit was hit even when the
 * app's script ignored the failed write. Its blocks are reserved up front
 * (fallocate: no data is written), never more than its share (1/workers) of
 * what the host's disk has free beyond builder.min_free: a loop device over a
 * sparse file whose disk runs out loses writes the build already saw succeed. No journal: the
 * volume is thrown away with the build.
 */
import { mkdir, open, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { run, runChecked as must } from '../process/run.ts';
import type { Cleanup } from '../process/cleanup.ts';

/** Below this much free space (or without free inodes) the volume counts as full. */
const FULL_BYTES = 1024 * 1024;
const FULL_INODES = 16;

export interface Volume {
  /** Where the volume is mounted. */
  path: string;
  /** Its size: builder.limits.disk, or less when the host's disk had less free. */
  mib: number;
  /** Whether the build used it up (its charged bytes counted as used). */
  full(): Promise<boolean>;
  /**
   * Bytes kept elsewhere that count as used: the cached tree a build's root
   * is an overlay of (sandbox/overlay.ts) is part of the build's tree, so the
   * volume's room is the limit less the tree below. 0 when there is none.
   */
  below: number;
}

/** The smallest volume worth making when the host's free space, not the limit, sets its size. */
const MIN_MIB = 64;
const MIB = 1024 * 1024;

/** How a volume shares the host's disk: what stays free, and among how many builds the rest is shared. */
export interface DiskShare {
  keepFreeMiB: number;
  builds: number;
}

/**
 * Makes and mounts a volume of at most `limitMiB` MiB in `dir`: no more than
 * its share of what the host's disk has free beyond `keepFreeMiB`, so that
 * the other builds that may start meanwhile find theirs. Its unmount is
 * pushed onto `cleanup`.
 */
export async function openVolume(dir: string, limitMiB: number, cleanup: Cleanup, share: DiskShare = { keepFreeMiB: 0, builds: 1 }): Promise<Volume> {
  const image = join(dir, 'volume.img');
  const path = join(dir, 'volume');
  const host = await statfs(dir);
  const freeMiB = Math.floor((host.bavail * host.bsize) / MIB);
  const mib = Math.min(limitMiB, Math.floor((freeMiB - share.keepFreeMiB) / Math.max(1, share.builds)));
  if (mib < Math.min(limitMiB, MIN_MIB)) {
    throw new Error(`the disk of the workdir has ${freeMiB} MiB free; keeping ${share.keepFreeMiB} MiB free (builder.min_free) leaves too little for a build volume`);
  }
  await (await open(image, 'wx', 0o600)).close();
  await must('cannot reserve the build volume', 'fallocate', ['--length', String(mib * MIB), '--', image]);
  // -m 0: no blocks kept for root (builds run as root); lazy init: formatting a large sparse file stays cheap.
  await must('cannot format the build volume', 'mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-E', 'lazy_itable_init=1,nodiscard', '-m', '0', image]);
  await mkdir(path, { mode: 0o700 });
  // Not nodev: debootstrap makes and checks device nodes in its target (the chroot's /dev is a tmpfs of its own anyway).
  await must('cannot mount the build volume', 'mount', ['-o', 'loop,noatime', '--', image, path]);
  cleanup.defer('the build volume', async () => {
    const result = await run('umount', ['--', path]);
    // Busy (a process that should be gone): detach it anyway; the loop device goes when it is released.
    if (!result.ok) await must('cannot unmount the build volume', 'umount', ['--lazy', '--', path]);
  });
  const volume: Volume = {
    path,
    mib,
    below: 0,
    full: async () => {
      const stats = await statfs(path);
      return stats.bavail * stats.bsize - volume.below < FULL_BYTES || stats.ffree < FULL_INODES;
    },
  };
  return volume;
}
