/**
 * The command line: `upaas [-c FILE] COMMAND ...`, run on the server as the
 * local admin. The same commands run over SSH through the same dispatcher;
 * `serve` and `example` are the command line's own (cli/serve.ts, cli/example.ts).
 */
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { type Io, LOCAL_ADMIN } from '../commands/command.ts';
import { dispatch } from '../commands/dispatch.ts';
import { readLimited } from '../commands/input.ts';
import { loadConfig } from '../config/config.ts';
import type { Services } from '../core/services.ts';
import { State } from '../state/state.ts';
import { createStorage } from '../storage/index.ts';
import { exampleCommand } from './example.ts';
import { serveCommand } from './serve.ts';

/** Opens config, state and storage on first use (`help` needs none of them); `close` releases them. */
function lazyServices(configFile: string | undefined): { get: () => Services; close: () => void } {
  let opened: Services | null = null;
  return {
    get: () => {
      if (!opened) {
        const config = loadConfig(configFile);
        const storage = createStorage(config);
        opened = { config, state: State.open(config.paths.state), storage };
      }
      return opened;
    },
    close: () => opened?.state.close(),
  };
}

export async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  let configFile: string | undefined;
  while (args[0] === '-c' || args[0] === '--config') {
    args.shift();
    configFile = args.shift();
    if (!configFile) {
      process.stderr.write('upaas: -c needs a file\n');
      return 64;
    }
  }
  // Stay subscribed until main returns: with no listener left, a later signal
  // (or execa's exit hook re-raising this one) would kill the process mid-build.
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const io: Io = {
    out: (chunk) => process.stdout.write(chunk),
    err: (chunk) => process.stderr.write(chunk),
    drain: async () => {
      if (process.stdout.writableNeedDrain) await once(process.stdout, 'drain');
    },
    binary: (data) => pipeline(data, process.stdout, { end: false }),
    input: (limit) => (process.stdin.isTTY ? Promise.resolve('') : readLimited(process.stdin, limit)),
    signal: controller.signal,
  };
  const services = lazyServices(configFile);
  try {
    return await dispatch(args, { io, user: LOCAL_ADMIN, local: true, services: services.get }, [serveCommand, exampleCommand]);
  } finally {
    services.close();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
