/**
 * `upaas log APP [BUILD] [--no-follow]`: a build's stored log (default: the
 * latest build). A running build is followed until it ends. Output goes out
 * in chunks as fast as the caller reads it, never held whole for a slow one.
 */
import { openBuildLog } from '../core/build-logs.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { StringDecoder } from 'node:string_decoder';
import { UsageError, defineCommand } from './command.ts';
import { send } from './output.ts';

const POLL_MS = 200;
const READ_BYTES = 64 * 1024;

export const logCommand = defineCommand({
  name: 'log',
  summary: "print a build's log (default: the latest build of APP); follows a running build",
  positionals: [{ name: 'APP', repo: true }, { name: 'BUILD', optional: true }],
  options: { 'no-follow': { type: 'boolean' } },
  access: 'repo:read',
  async run({ io, services }, { values, args, repo }) {
    const app = repo.name;
    const wanted = args.BUILD;
    if (wanted !== undefined && !/^[0-9]{1,15}$/.test(wanted)) throw new UsageError(`BUILD: expected a build number, got ${JSON.stringify(wanted)}`);
    const all = services();
    const source = await openBuildLog(all, app, wanted === undefined ? undefined : Number(wanted));
    if ('text' in source) {
      await send(io, source.text);
      return 0;
    }
    // Running: its log is only in its file so far; print what grows until the build ends.
    const { record, file } = source;
    const { state } = all;
    try {
      let position = 0;
      const buffer = Buffer.alloc(READ_BYTES);
      // A read may end inside a UTF-8 character: the decoder keeps its first bytes for the next one.
      const decoder = new StringDecoder('utf8');
      for (;;) {
        const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
        if (bytesRead > 0) {
          position += bytesRead;
          await send(io, decoder.write(buffer.subarray(0, bytesRead)));
          continue;
        }
        const running = state.builds.get(app, record.id)?.status === 'running';
        if (!running) {
          // Ended: the stored log is complete (the file may still be flushing); print what we have not.
          const full = state.builds.log(record.id);
          if (full !== null) await send(io, decoder.write(Buffer.from(full).subarray(position)) + decoder.end());
          break;
        }
        if (values['no-follow'] || io.signal?.aborted) break;
        await sleep(POLL_MS);
      }
    } finally {
      await file.close();
    }
    return 0;
  },
});
