/** `upaas check-config`: loads and validates upaas.yml, prints the effective config or the errors. */
import { dump } from 'js-yaml';
import { loadConfig } from '../../config/config.ts';
import { createStorage } from '../../storage/index.ts';
import { type Command, parse } from '../command.ts';

export const checkConfigCommand: Command = {
  name: 'check-config',
  usage: 'check-config',
  summary: 'validate the config file and print the effective config (defaults filled in)',
  permission: 'admin',
  async run(args, io, globals) {
    parse(args, {}, { min: 0, max: 0 });
    const config = loadConfig(globals.configFile);
    createStorage(config);
    const { file, interpreters, ...rest } = config;
    const { rest: types, ...shared } = interpreters;
    io.out(`# ${file ?? 'no config file: embedded defaults'} is valid; effective config:\n`);
    io.out(dump({ ...rest, interpreters: { ...shared, ...types } }, { lineWidth: 120 }));
    return 0;
  },
};
