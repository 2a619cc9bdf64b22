/**
 * `upaas log APP [BUILD] [--no-follow]`: a build's stored log (default: the
 * latest build). A running build is followed until it ends.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoNameFrom } from '../git/repos.ts';
import { type Command, CommandError, UsageError, parse } from './command.ts';

const POLL_MS = 200;

export const logCommand: Command = {
  name: 'log',
  usage: 'log APP [BUILD] [--no-follow]',
  summary: "print a build's log (default: the latest build of APP); follows a running build",
  access: 'repo:read',
  async run({ args, io, services }) {
    const { values, positionals } = parse(args, { 'no-follow': { type: 'boolean' } }, { min: 1, max: 2 });
    const app = repoNameFrom(positionals[0] as string);
    const wanted = positionals[1];
    if (wanted !== undefined && !/^[0-9]+$/.test(wanted)) throw new UsageError(`BUILD: expected a build number, got ${JSON.stringify(wanted)}`);
    const { config, state } = services();
    const record = wanted === undefined ? state.builds.latest(app) : state.builds.get(app, Number(wanted));
    if (!record) throw new CommandError(wanted === undefined ? `${app} has no builds` : `${app} has no build ${wanted}`);
    const stored = state.builds.log(record.id);
    if (stored !== null) {
      io.out(stored);
      return 0;
    }
    // Running: its log is only in its file so far; print what grows until the build ends.
    const file = await open(join(config.paths.state, 'logs', app, `${record.id}.log`), 'r').catch(() => null);
    if (!file) throw new CommandError(`build ${record.id} of ${app} has no log yet`);
    try {
      let position = 0;
      const buffer = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
        if (bytesRead > 0) {
          position += bytesRead;
          io.out(buffer.subarray(0, bytesRead).toString('utf8'));
          continue;
        }
        const running = state.builds.get(app, record.id)?.status === 'running';
        if (!running) {
          // Ended: the stored log is complete (the file may still be flushing); print what we have not.
          const full = state.builds.log(record.id);
          if (full !== null) io.out(Buffer.from(full).subarray(position).toString('utf8'));
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
};
