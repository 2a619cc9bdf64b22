/** `upaas check-config`: loads and validates upaas.yml, prints the effective config or the errors. */
import { dump } from 'js-yaml';
import { createStorage } from '../storage/index.ts';
import { type Command, parse } from './command.ts';

export const checkConfigCommand: Command = {
  name: 'check-config',
  usage: 'check-config',
  summary: 'validate the config file and print the effective config (defaults filled in)',
  access: 'admin',
  async run({ args, io, services }) {
    parse(args, {}, { min: 0, max: 0 });
    const { config } = services();
    createStorage(config);
    const { file, interpreters, ...rest } = config;
    const { rest: types, ...shared } = interpreters;
    io.out(`# ${file ?? 'no config file: embedded defaults'} is valid; effective config:\n`);
    io.out(dump({ ...rest, interpreters: { ...shared, ...types } }, { lineWidth: 120 }));
    return 0;
  },
};
