/**
 * Whole-system archives with GNU tar and zstd (or gzip), as streams (made in
 * frames by archive/frames.ts, unpacked here). GNU tar
 * keeps device nodes, FIFOs, hard links, absolute symlinks, modes incl.
 * setuid/setgid, numeric owners, ACLs, xattrs (file capabilities) and sparse
 * files exactly; node-tar does not (see ARCHITECTURE.md). Argument arrays only.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Result, type ResultPromise, execa } from 'execa';
import { joinedCommand } from '../process/join-cgroup.ts';
import { settledAll } from '../process/settled.ts';

export type Compression = 'zstd' | 'gzip';

export const EXTENSION: Record<Compression, string> = { zstd: 'tar.zst', gzip: 'tar.gz' };

const TAR_COMMON = ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--acls'];

/**
 * How a package's tar stream is written (archive/frames.ts): POSIX format
 * (xattrs need it), without the access and change times GNU tar would add to
 * each member's pax header, so that a member's bytes depend on the file alone
 * and a frame of an unchanged range can be reused as it is.
 */
export const TAR_CREATE = ['--create', '--file=-', '--format=posix', '--pax-option=delete=atime,delete=ctime', '--sparse', ...TAR_COMMON];

function decompressor(compression: Compression): [string, string[]] {
  return compression === 'zstd' ? ['zstd', ['-q', '-d', '-c']] : ['gzip', ['-d', '-c']];
}

/** `result` when its program ended well; else an error with its exit and its stderr's last lines. */
export function succeeded<T extends Result>(name: string, result: T): T {
  if (result.exitCode !== 0) {
    const stderr = Buffer.from(result.stderr as Uint8Array | string).toString().trim().split('\n').slice(-5).join('; ');
    throw new Error(`${name} exited with ${result.exitCode ?? result.signal}${stderr ? `: ${stderr}` : ''}`);
  }
  return result;
}

async function finished(name: string, child: ResultPromise): Promise<void> {
  succeeded(name, await child);
}

/**
 * Unpacks a compressed archive stream into `root` (which must exist), exactly
 * as it was packed. The stream is fed to the decompressor here (storage
 * verifies its hash on the way); the decompressor writes straight into tar.
 * `signal` (like `packTree`'s) stops both programs: a stopping server does not
 * wait for an archive of gigabytes. With `cgroupProcs` (a build's), both
 * programs run in that cgroup: a tree an app shaped (millions of hard links,
 * whose paths tar keeps in memory) costs the build's memory, not the host's.
 */
export async function unpackTree(
  stream: Readable,
  root: string,
  compression: Compression,
  signal?: AbortSignal,
  cgroupProcs: readonly string[] = [],
): Promise<void> {
  const tar = extractInto(root, { signal, cgroupProcs });
  const [file, args] = joinedCommand(cgroupProcs, ...decompressor(compression));
  const unzip = execa(file, args, { buffer: { stderr: true }, reject: false, stdin: 'pipe', stdout: tar.stdin, cancelSignal: signal });
  tar.stdin.destroy();
  const feeding = pipeline(stream, unzip.stdin);
  // The source's own error (a checksum mismatch) says most; it comes first.
  await settledAll([feeding, finished(file, unzip), finished('tar', tar)]);
}

/** tar extracting the archive on its stdin into `root` exactly as it was packed (the caller feeds and closes its stdin). */
function extractInto(root: string, options: { signal?: AbortSignal; cgroupProcs: readonly string[]; timeout?: number }) {
  const [file, args] = joinedCommand(options.cgroupProcs, 'tar', ['--extract', '--file=-', '--preserve-permissions', '--same-owner', ...TAR_COMMON, '--directory', root]);
  return execa(file, args, { buffer: { stdout: true, stderr: true }, reject: false, stdin: 'pipe', cancelSignal: options.signal, timeout: options.timeout });
}

/**
 * Copies the entries `names` (archive names, "./..." as bytes, in that
 * order, no recursion) of the tree `from` into the tree `into` as an archive
 * would keep them: tar into tar, hard links among them kept, folders' own
 * times set once what goes into them is there (also on folders already in
 * `into`).
 */
export async function copyEntries(
  from: string,
  names: readonly Buffer[],
  into: string,
  options: { signal?: AbortSignal; cgroupProcs?: readonly string[]; timeoutSeconds?: number } = {},
): Promise<void> {
  const { signal, cgroupProcs = [] } = options;
  const timeout = options.timeoutSeconds === undefined ? undefined : options.timeoutSeconds * 1000;
  const list = Buffer.concat(names.flatMap((name) => [name, Buffer.from([0])]));
  const [packFile, packArgs] = joinedCommand(cgroupProcs, 'tar', [...TAR_CREATE, '--directory', from, '--no-recursion', '--null', '--verbatim-files-from', '--files-from=-']);
  const take = extractInto(into, { signal, cgroupProcs, timeout });
  const pack = execa(packFile, packArgs, { input: list, buffer: { stdout: false, stderr: true }, reject: false, stdout: take.stdin, cancelSignal: signal, timeout });
  take.stdin.destroy();
  await settledAll([finished('tar (reading)', pack), finished('tar (writing)', take)]);
}

export function compressionOf(key: string): Compression {
  return key.endsWith('.tar.gz') ? 'gzip' : 'zstd';
}
