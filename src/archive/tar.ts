/**
 * Whole-system archives with GNU tar and zstd (or gzip), as streams. GNU tar
 * keeps device nodes, FIFOs, hard links, absolute symlinks, modes incl.
 * setuid/setgid, numeric owners, ACLs, xattrs (file capabilities) and sparse
 * files exactly; node-tar does not (see ARCHITECTURE.md). Argument arrays only.
 */
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ResultPromise, execa } from 'execa';
import { joinedCommand } from '../process/join-cgroup.ts';

export type Compression = 'zstd' | 'gzip';

export const EXTENSION: Record<Compression, string> = { zstd: 'tar.zst', gzip: 'tar.gz' };

const TAR_COMMON = ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--acls'];

function compressor(compression: Compression, level: number): [string, string[]] {
  if (compression === 'zstd') return ['zstd', ['-q', '-c', '-T0', `-${Math.min(level, 19)}`]];
  return ['gzip', ['-c', `-${Math.min(level, 9)}`]];
}

function decompressor(compression: Compression): [string, string[]] {
  return compression === 'zstd' ? ['zstd', ['-q', '-d', '-c']] : ['gzip', ['-d', '-c']];
}

async function finished(name: string, child: ResultPromise): Promise<void> {
  const result = await child;
  if (result.exitCode !== 0) {
    const stderr = String(result.stderr ?? '').trim().split('\n').slice(-5).join('; ');
    throw new Error(`${name} exited with ${result.exitCode ?? result.signal}${stderr ? `: ${stderr}` : ''}`);
  }
}

/**
 * Archives the tree at `root`: `tar -c | zstd -T0`. tar writes straight into
 * the compressor through a kernel pipe (no copy through this process); the
 * compressed stream comes back here to be hashed and stored. Returns that
 * stream and a promise that settles when both programs have ended.
 */
export function packTree(
  root: string,
  compression: Compression,
  level: number,
  signal?: AbortSignal,
  cgroupProcs: readonly string[] = [],
): { stream: Readable; done: Promise<void> } {
  const [file, args] = joinedCommand(cgroupProcs, ...compressor(compression, level));
  const zip = execa(file, args, { buffer: { stdout: false, stderr: true }, reject: false, stdin: 'pipe', cancelSignal: signal });
  const [tarFile, tarArgs] = joinedCommand(cgroupProcs, 'tar', ['--create', '--file=-', '--sparse', '--one-file-system', ...TAR_COMMON, '--directory', root, '.']);
  const tar = execa(tarFile, tarArgs, {
    buffer: { stderr: true },
    reject: false,
    cancelSignal: signal,
    stdin: 'ignore',
    stdout: zip.stdin,
  });
  // tar holds the pipe's write end now; dropping ours lets the compressor see EOF when tar ends.
  zip.stdin.destroy();
  const done = Promise.all([finished('tar', tar), finished(file, zip)]).then(() => undefined);
  // Taken at once: execa lets an unread stdout flow away, so a consumer that
  // attaches after an await (storage.put makes its folders first) lost the
  // archive's first bytes. The pipe keeps them, with backpressure.
  const stream = new PassThrough();
  zip.stdout.pipe(stream);
  zip.stdout.on('error', (error) => stream.destroy(error));
  // A consumer that gives up (a full disk under the storage) must not leave
  // the compressor blocked on a pipe nobody reads: closing our end ends it
  // (EPIPE), and tar after it.
  stream.on('close', () => {
    if (!zip.stdout.readableEnded) zip.stdout.destroy();
  });
  return { stream, done };
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
  const [tarFile, tarArgs] = joinedCommand(cgroupProcs, 'tar', ['--extract', '--file=-', '--preserve-permissions', '--same-owner', ...TAR_COMMON, '--directory', root]);
  const tar = execa(tarFile, tarArgs, { buffer: { stdout: true, stderr: true }, reject: false, stdin: 'pipe', cancelSignal: signal });
  const [file, args] = joinedCommand(cgroupProcs, ...decompressor(compression));
  const unzip = execa(file, args, { buffer: { stderr: true }, reject: false, stdin: 'pipe', stdout: tar.stdin, cancelSignal: signal });
  tar.stdin.destroy();
  const feeding = pipeline(stream, unzip.stdin);
  const outcomes = await Promise.allSettled([feeding, finished(file, unzip), finished('tar', tar)]);
  // The source's own error (a checksum mismatch) says most; report it first.
  const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failure) throw failure.reason;
}

export function compressionOf(key: string): Compression {
  return key.endsWith('.tar.gz') ? 'gzip' : 'zstd';
}
