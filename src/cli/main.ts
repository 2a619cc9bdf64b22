/**
 * The command line: `upaas [-c FILE] COMMAND ...`, run on the server as the
 * local admin. The same commands run over SSH through the same dispatcher.
 */
import { text } from 'node:stream/consumers';
import { type Io, LOCAL_ADMIN, lazyServices } from '../commands/command.ts';
import { dispatch } from '../commands/dispatch.ts';

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
    input: () => (process.stdin.isTTY ? Promise.resolve('') : text(process.stdin)),
    signal: controller.signal,
  };
  const services = lazyServices(configFile);
  try {
    return await dispatch(args, { io, user: LOCAL_ADMIN, local: true, services: services.get });
  } finally {
    services.close();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
