/**
 * The command line: `upaas [-c FILE] COMMAND ...`. Every admin command also
 * runs here locally as the admin. Exit codes: 0 ok, 1 user error, 2 system
 * error, 64 usage error, 78 config error.
 */
import { ValidationError } from '../config/schema.ts';
import { YamlError } from '../config/yaml.ts';
import { RepoError } from '../git/repos.ts';
import { BusyError } from '../state/builds.ts';
import { type Command, type Globals, type Io, UsageError } from './command.ts';
import { buildCommand } from './commands/build.ts';
import { buildsCommand } from './commands/builds.ts';
import { checkConfigCommand } from './commands/check-config.ts';
import { exampleCommand } from './commands/example.ts';
import { logCommand } from './commands/log.ts';
import { packagesCommand } from './commands/packages.ts';

export const COMMANDS: Command[] = [buildCommand, buildsCommand, logCommand, packagesCommand, checkConfigCommand, exampleCommand];

const stdio: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

function help(io: Io): void {
  io.out('usage: upaas [-c FILE] COMMAND [ARGS]\n\ncommands:\n');
  for (const command of COMMANDS) io.out(`  ${command.usage.padEnd(58)} ${command.summary}\n`);
  io.out('\n-c FILE (or UPAAS_CONFIG) picks the config; the default is ./upaas.yml\n');
}

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const globals: Globals = {};
  const args = [...argv];
  while (args[0] === '-c' || args[0] === '--config') {
    args.shift();
    const file = args.shift();
    if (!file) {
      io.err('upaas: -c needs a file\n');
      return 64;
    }
    globals.configFile = file;
  }
  const name = args.shift();
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    help(io);
    return name === undefined ? 64 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`upaas: unknown command ${JSON.stringify(name)}; run "upaas help"\n`);
    return 64;
  }
  if (args.includes('--help') || args.includes('-h')) {
    io.out(`usage: upaas ${command.usage}\n\n${command.summary}\n`);
    return 0;
  }
  try {
    return await command.run(args, io, globals);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`upaas ${command.name}: ${error.message}\nusage: upaas ${command.usage}\n`);
      return 64;
    }
    if (error instanceof ValidationError || error instanceof YamlError) {
      io.err(`upaas: invalid config: ${error.message}\n`);
      return 78;
    }
    if (error instanceof RepoError || error instanceof BusyError) {
      io.err(`upaas ${command.name}: ${error.message}\n`);
      return 1;
    }
    io.err(`upaas ${command.name}: system error: ${(error as Error).stack ?? String(error)}\n`);
    return 2;
  }
}
