/**
 * `packages download APP [PACKAGE]`: the archive of a package (default: the
 * current one) on standard output, checked against its SHA-256 on the way:
 * `ssh -p 2222 git@HOST packages download myapp > myapp.tar.zst`.
 */
import { type ArchiveDownload, CorruptArchiveError, openArchive, packageToDownload, takeDownloadSlot } from '../../core/download.ts';
import { serverLog } from '../../process/server-log.ts';
import { type Io, defineCommand } from '../command.ts';

export const packagesDownloadCommand = defineCommand({
  name: 'packages download',
  summary: "write the archive of one of APP's packages (default: the current one) to standard output, its SHA-256 checked",
  positionals: [{ name: 'APP', repo: true }, { name: 'PACKAGE', optional: true }],
  options: {},
  access: 'repo:read',
  async run({ io, user, services }, { args, repo }) {
    const all = services();
    const pkg = packageToDownload(all, repo.name, args.PACKAGE);
    const release = takeDownloadSlot(all, user.name);
    try {
      return await send(io, repo.name, await openArchive(all, pkg));
    } finally {
      release();
    }
  },
});

/** Sends the archive to the caller; a corrupt one ends short, with a system error (exit 2). */
async function send(io: Io, app: string, archive: ArchiveDownload): Promise<number> {
  // The caller gone, or the server stopping: the read stops too.
  const stop = () => archive.stream.destroy(new Error('the download was cancelled'));
  if (io.signal?.aborted) stop();
  io.signal?.addEventListener('abort', stop, { once: true });
  try {
    await io.binary(archive.stream);
  } catch (error) {
    if (!(error instanceof CorruptArchiveError)) throw error;
    serverLog(`packages download ${app}: ${(error.cause as Error | undefined)?.message ?? error.message}`);
    io.err(`upaas packages download: system error: ${error.message}\n`);
    return 2;
  } finally {
    io.signal?.removeEventListener('abort', stop);
  }
  return 0;
}
