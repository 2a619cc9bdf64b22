/**
 * GET|HEAD /api/v1/apps/APP/packages/ID/archive: a package's archive (ID: a
 * package id, a unique prefix of 7+ hex characters, or `current`), as a
 * download that resumes: ETag = the package id (its SHA-256), one byte range
 * (206; 416 past the end), If-None-Match (304), If-Range. The bytes are
 * checked against the id on the way (core/download.ts): a corrupt stored
 * file cuts the response short, so the client never holds a complete bad
 * copy. A download holds one of the user's git slots (server.git_per_user).
 */
import type { IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { EXTENSION, compressionOf } from '../../archive/tar.ts';
import { type ByteRange, CorruptArchiveError, openArchive, packageToDownload, rangeOf, takeDownloadSlot } from '../../core/download.ts';
import { serverLog } from '../../process/server-log.ts';
import type { PackageRecord } from '../../state/packages.ts';
import { ApiError } from '../errors.ts';
import { endpoint } from '../route.ts';

/** The word that names the app's current package instead of an id. */
const CURRENT = 'current';

/** Whether an If-None-Match header names `etag` (or is `*`); weak tags count, as RFC 9110 says for it. */
function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/**
 * The range to send (null: all of it): a Range header counts only when an
 * If-Range names this very archive (an If-Range date never does: there is no
 * Last-Modified).
 */
function wantedRange(request: IncomingMessage, etag: string, size: number): ByteRange | null {
  const ifRange = request.headers['if-range'];
  if (ifRange !== undefined && (typeof ifRange !== 'string' || ifRange.trim() !== etag)) return null;
  const range = rangeOf(request.headers.range, size);
  if (range === 'unsatisfiable') {
    throw new ApiError(416, `the requested range is not satisfiable: the archive has ${size} bytes`, { 'Content-Range': `bytes */${size}` });
  }
  return range;
}

function headersOf(pkg: PackageRecord, etag: string): Record<string, string> {
  const compression = compressionOf(pkg.storageKey);
  return {
    ETag: etag,
    'Accept-Ranges': 'bytes',
    // Revalidated each time: `current` names another package after each release.
    'Cache-Control': 'private, no-cache',
    'Content-Type': compression === 'gzip' ? 'application/gzip' : 'application/zstd',
    'Content-Disposition': `attachment; filename="${pkg.app}-${pkg.id.slice(0, 12)}.${EXTENSION[compression]}"`,
  };
}

export const downloadArchive = endpoint({
  access: 'read',
  async run({ services, user, repo, params, request, response }) {
    const given = params.package ?? '';
    const pkg = packageToDownload(services, repo.name, given === CURRENT ? undefined : given);
    const etag = `"${pkg.id}"`;
    const headers = headersOf(pkg, etag);
    if (noneMatch(request.headers['if-none-match'], etag)) {
      response.writeHead(304, headers);
      response.end();
      return 'answered';
    }
    const range = wantedRange(request, etag, pkg.bytes);
    const release = takeDownloadSlot(services, user.name);
    // The slot is held until the response is over, however it ends.
    response.once('close', release);
    const archive = await openArchive(services, pkg, range);
    const sent = range ? range.end - range.start + 1 : archive.bytes;
    response.writeHead(range ? 206 : 200, {
      ...headers,
      'Content-Length': String(sent),
      ...(range ? { 'Content-Range': `bytes ${range.start}-${range.end}/${archive.bytes}` } : {}),
    });
    if (request.method === 'HEAD') {
      archive.stream.destroy();
      response.end();
      return 'answered';
    }
    // The status and size go out now: the first bytes may wait for the check of the whole file.
    response.flushHeaders();
    try {
      await pipeline(archive.stream, response);
    } catch (error) {
      // Cut short: the client sees fewer bytes than Content-Length said.
      response.destroy();
      if (error instanceof CorruptArchiveError) {
        serverLog(`api: download of package ${pkg.id} of ${pkg.app}: ${(error.cause as Error | undefined)?.message ?? error.message}`);
      }
    }
    return 'answered';
  },
});
