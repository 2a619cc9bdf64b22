/** `upaas serve`: runs the server until SIGTERM or SIGINT (local only). */
import { startServer } from '../server/serve.ts';
import { type Command, CommandError, parse } from './command.ts';

export const serveCommand: Command = {
  name: 'serve',
  usage: 'serve',
  summary: 'serve git over SSH and HTTP, build pushes (the server; local only)',
  access: 'admin',
  async run({ args, io, services, local }) {
    parse(args, {}, { min: 0, max: 0 });
    if (!local || !io.signal) throw new CommandError('serve runs only on the server itself');
    const { config, state } = services();
    const server = await startServer(config, state);
    const signal = io.signal;
    // SIGTERM / SIGINT abort the signal (cli/main.ts); later ones are absorbed while builds finish.
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await server.stop();
    // Idle keep-alive connections may hold the event loop; nothing is left to do.
    setTimeout(() => process.exit(0), 2000).unref();
    return 0;
  },
};
