/**
 * The command line: `upaas [-c FILE] COMMAND ...`, run on the server as the
 * local admin. The same commands run over SSH through the same dispatcher;
 * `serve` and `example` are the command line's own (cli/serve.ts, cli/example.ts).
 * A command's events (a local build's) reach the app's webhooks before the
 * process ends.
 */
import { once } from 'node:events';
import { type Io, LOCAL_ADMIN } from '../commands/command.ts';
import { dispatch } from '../commands/dispatch.ts';
import { readLimited } from '../commands/input.ts';
import { sendBytes } from '../commands/output.ts';
import { loadConfig } from '../config/config.ts';
import type { Services } from '../core/services.ts';
import { Webhooks } from '../core/webhooks.ts';
import { State } from '../state/state.ts';
import { createStorage } from '../storage/index.ts';
import { exampleCommand } from './example.ts';
import { serveCommand } from './serve.ts';

/**
 * Opens config, state, storage and the webhooks on first use (`help` needs
 * none of them); `webhooks` is null until then; `close` releases them.
 */
function lazyServices(configFile: string | undefined): { get: () => Services; webhooks: () => Webhooks | null; close: () => void } {
  let opened: (Services & { events: Webhooks }) | null = null;
  return {
    get: () => {
      if (!opened) {
        const config = loadConfig(configFile);
        const storage = createStorage(config);
        const state = State.open(config.paths.state);
        opened = { config, state, storage, events: new Webhooks({ config, state }) };
      }
      return opened;
    },
    webhooks: () => opened?.events ?? null,
    close: () => opened?.state.close(),
  };
}

/** How long the deliveries may keep the command waiting before it says why it waits. */
const NOTICE_AFTER_MS = 2000;

/**
 * Waits until the command's webhook deliveries are over (bounded by their
 * tries and time limits); a SIGINT or SIGTERM meanwhile gives up on them,
 * and they are recorded failed.
 */
async function awaitDeliveries(webhooks: Webhooks | null): Promise<void> {
  if (!webhooks) return;
  const giveUp = () => void webhooks.stop('the command was interrupted before it was delivered');
  process.on('SIGINT', giveUp);
  process.on('SIGTERM', giveUp);
  const notice = setTimeout(() => process.stderr.write('upaas: sending webhook deliveries (Ctrl-C gives up on them)\n'), NOTICE_AFTER_MS);
  try {
    await webhooks.settle();
  } finally {
    clearTimeout(notice);
    process.off('SIGINT', giveUp);
    process.off('SIGTERM', giveUp);
  }
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
    binary: (data) => sendBytes(data, process.stdout),
    binaryErr: (data) => sendBytes(data, process.stderr),
    input: (limit) => (process.stdin.isTTY ? Promise.resolve('') : readLimited(process.stdin, limit)),
    signal: controller.signal,
  };
  const services = lazyServices(configFile);
  try {
    return await dispatch(args, { io, user: LOCAL_ADMIN, local: true, services: services.get }, [serveCommand, exampleCommand]);
  } finally {
    await awaitDeliveries(services.webhooks());
    services.close();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
