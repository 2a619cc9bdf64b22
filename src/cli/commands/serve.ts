/** `upaas serve`: runs the server until SIGTERM or SIGINT (local only). */
import { startServer } from '../../server/serve.ts';
import { type Command, CommandError, parse } from '../command.ts';

export const serveCommand: Command = {
  name: 'serve',
  usage: 'serve',
  summary: 'serve git over SSH, run builds of pushes (the server; local only)',
  access: 'admin',
  async run({ args, services, local }) {
    parse(args, {}, { min: 0, max: 0 });
    if (!local) throw new CommandError('serve runs only on the server itself');
    const { config, state } = services();
    const server = await startServer(config, state);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        server.stop().then(resolve, resolve);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    return 0;
  },
};
