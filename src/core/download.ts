/**
 * A package's archive for a download (`packages download`, the API's
 * archive route): the whole file or one byte range of it, streamed from
 * storage. The stored object's recorded SHA-256 must be the package id, and
 * the bytes are checked against it on the way: the whole object is read for
 * a range too, and the last bytes sent wait for the verdict, so a corrupt
 * file always ends the download with an error, never as a complete bad copy.
 */
import type { Readable } from 'node:stream';
import type { PackageRecord } from '../state/packages.ts';
import { StorageError } from '../storage/handler.ts';
import { HoldLast } from '../storage/verify.ts';
import { CoreError } from './errors.ts';
import { findPackage } from './packages.ts';
import type { Services } from './services.ts';

/** Bytes `start` to `end`, both included (as HTTP's Range counts them). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface ArchiveDownload {
  package: PackageRecord;
  /** The whole archive's size. */
  bytes: number;
  /** The part that `stream` carries; null: all of it. */
  range: ByteRange | null;
  stream: Readable;
}

/** The stored archive does not match its package id (or is not there): the platform's problem, told as one line. */
export class CorruptArchiveError extends StorageError {
  constructor(app: string, id: string, why: string, options?: { cause?: unknown }) {
    super(`the stored file of package ${id.slice(0, 12)} of ${app} ${why}; the download was stopped (an admin may run "doctor --deep")`, options);
    this.name = 'CorruptArchiveError';
  }
}

/**
 * Takes one of `user`'s server.git_per_user slots for a download (the SSH
 * command's and the API's alike): a release function, or a 429 CoreError when
 * all are in use. Outside the server there are no slots to take.
 */
export function takeDownloadSlot(services: Pick<Services, 'config' | 'gitSlots'>, user: string): () => void {
  if (!services.gitSlots) return () => undefined;
  const release = services.gitSlots.take(user);
  if (!release) {
    throw new CoreError(`you have ${services.config.server.git_per_user} git operations or downloads running (server.git_per_user); try again when one ends`, 429);
  }
  return release;
}

/** The package of `app` named by `given` (an id or a unique prefix), or its current one. */
export function packageToDownload(services: Pick<Services, 'state'>, app: string, given: string | undefined): PackageRecord {
  const pkg = given === undefined ? services.state.packages.current(app) : findPackage(services, app, given);
  if (!pkg) throw new CoreError(`${app} has no current package`, 404);
  if (!pkg.file) throw new CoreError(`the file of package ${pkg.id.slice(0, 12)} of ${app} was deleted (apps.packages_per_app keeps the newest ones)`, 404);
  return pkg;
}

/**
 * Opens the archive of `pkg` (from packageToDownload), all of it or `range`
 * (checked against its size by the caller: rangeOf). The stream errors with a
 * CorruptArchiveError before its last bytes when the file is not the package.
 */
export async function openArchive(services: Pick<Services, 'storage'>, pkg: PackageRecord, range: ByteRange | null = null): Promise<ArchiveDownload> {
  const stored = await services.storage.stat(pkg.storageKey);
  if (!stored) throw new CorruptArchiveError(pkg.app, pkg.id, 'is missing');
  if (stored.sha256 !== pkg.id) throw new CorruptArchiveError(pkg.app, pkg.id, `has the SHA-256 ${stored.sha256}`);
  if (range && (range.start < 0 || range.end < range.start || range.end >= stored.bytes)) throw new RangeError(`bad range ${range.start}-${range.end}`);
  const source = await services.storage.get(pkg.storageKey, pkg.id).catch((error: unknown) => {
    // Written again since the stat (storage names the object it found): not the package either.
    throw error instanceof StorageError ? new CorruptArchiveError(pkg.app, pkg.id, 'does not match its SHA-256', { cause: error }) : error;
  });
  const part = slice(range);
  // By hand, not pipeline(): the reader must get the error that says what happened, and a reader gone stops the read.
  source.once('error', (error: Error) => {
    part.destroy(error instanceof StorageError ? new CorruptArchiveError(pkg.app, pkg.id, 'does not match its SHA-256', { cause: error }) : error);
  });
  part.once('close', () => source.destroy());
  source.pipe(part);
  return { package: pkg, bytes: stored.bytes, range, stream: part };
}

/**
 * The bytes in `range` (all with null). It reads its input to the end and
 * holds its last output chunk until then: the storage's check of the whole
 * object comes at the end of the input.
 */
function slice(range: ByteRange | null): HoldLast {
  let offset = 0;
  return new HoldLast(
    (chunk) => {
      const first = offset;
      offset += chunk.length;
      if (!range) return chunk;
      const from = Math.max(range.start - first, 0);
      const to = Math.min(range.end + 1 - first, chunk.length);
      return to > from ? chunk.subarray(from, to) : null;
    },
    () => null,
  );
}

/**
 * An HTTP Range header against an object of `size` bytes: the one range it
 * asks for, null for none (or one this server does not do: several ranges
 * are answered whole, as RFC 9110 allows), 'unsatisfiable' for one past the end.
 */
export function rangeOf(header: string | undefined, size: number): ByteRange | null | 'unsatisfiable' {
  if (header === undefined) return null;
  const match = /^bytes=([0-9]*)-([0-9]*)$/.exec(header.trim());
  if (!match) return null;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return null;
  if (first === '') {
    // The last N bytes.
    const n = Number(last);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(size - n, 0), end: size - 1 };
  }
  const start = Number(first);
  if (start >= size) return 'unsatisfiable';
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (end < start) return null;
  return { start, end };
}
