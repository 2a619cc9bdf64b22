/** `upaas check-config`: loads and validates upaas.yml, prints the effective config or the errors. */
import { dump } from 'js-yaml';
import { defineCommand } from './command.ts';

export const checkConfigCommand = defineCommand({
  name: 'check-config',
  summary: 'validate the config file and print the effective config (defaults filled in)',
  positionals: [],
  options: {},
  access: 'admin',
  async run({ io, services }) {
    // Opening the services validates the storage settings too.
    const { config } = services();
    const { file, interpreters, ...rest } = config;
    const { rest: types, ...shared } = interpreters;
    io.out(`# ${file ?? 'no config file: embedded defaults'} is valid; effective config:\n`);
    io.out(dump({ ...rest, interpreters: { ...shared, ...types } }, { lineWidth: 120 }));
    return 0;
  },
});
