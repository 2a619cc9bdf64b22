/** `upaas serve`: runs the server until SIGTERM or SIGINT (local only). */
import { startServer } from '../server/serve.ts';
import { CommandError, defineCommand } from '../commands/command.ts';

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'serve git over SSH and HTTP, build pushes (the server; local only)',
  positionals: [],
  options: {},
  access: 'admin',
  async run({ io, services, local }) {
    if (!local || !io.signal) throw new CommandError('serve runs only on the server itself');
    const server = await startServer(services());
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
});
