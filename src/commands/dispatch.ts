/**
 * Runs one admin command for one user, locally or over SSH: finds the
 * command, answers --help, checks the command's declared access, runs it, and
 * turns every error into one line and an exit code (0 ok, 1 refused/user
 * error, 2 system error, 64 usage, 78 invalid config). What it prints is made
 * safe for a terminal (process/terminal.ts).
 */
import { ValidationError } from '../config/schema.ts';
import { YamlError } from '../config/yaml.ts';
import { RepoError, repoNameFrom } from '../git/repos.ts';
import { forTerminal } from '../process/terminal.ts';
import { BusyError } from '../state/builds.ts';
import { UserError, allows } from '../state/users.ts';
import { type Command, CommandError, type Invocation, UsageError } from './command.ts';
import { COMMANDS } from './index.ts';

/** Commands that only make sense on the server itself. */
const LOCAL_ONLY = ['serve', 'example'];

export function helpText(user: Invocation['user'], local: boolean): string {
  const lines = [`usage: ${local ? 'upaas [-c FILE] ' : ''}COMMAND [ARGS]   (COMMAND --help for details)`, '', 'commands:'];
  for (const command of COMMANDS) {
    if (command.access === 'admin' && !user.admin) continue;
    if (!local && LOCAL_ONLY.includes(command.name)) continue;
    lines.push(`  ${command.usage.padEnd(56)} ${command.summary}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The access check a command declared, or a CommandError naming what is missing. */
function authorize(command: Command, invocation: Invocation): void {
  const { user } = invocation;
  if (command.access === 'user') return;
  if (command.access === 'admin') {
    if (!user.admin) throw new CommandError(`${command.name}: only admins may run this command`);
    return;
  }
  const first = invocation.args.find((arg) => !arg.startsWith('-'));
  if (first === undefined) throw new UsageError('missing argument');
  const repo = repoNameFrom(first);
  const needs = command.access === 'repo:write' ? 'write' : 'read';
  if (!allows(invocation.services().state.users.accessTo(user, repo), needs)) {
    throw new CommandError(`repository ${repo} does not exist or you have no ${needs} access to it`);
  }
}

export async function dispatch(argv: string[], given: Omit<Invocation, 'args'>): Promise<number> {
  // All a command prints ends up on a terminal, and much of it is app-made
  // (commit messages, metadata, build output): shown as data only.
  const io = { ...given.io, out: (text: string) => given.io.out(forTerminal(text)), err: (text: string) => given.io.err(forTerminal(text)) };
  const invocation = { ...given, io };
  // Two-word commands ("repos create") before one-word ones ("build").
  const twoWords = argv.length >= 2 ? `${argv[0]} ${argv[1]}` : '';
  const named = COMMANDS.some((c) => c.name === twoWords);
  const name = named ? twoWords : argv[0];
  const args = argv.slice(named ? 2 : 1);
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(helpText(invocation.user, invocation.local));
    return name === undefined && invocation.local ? 64 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name && (invocation.local || !LOCAL_ONLY.includes(c.name)));
  if (!command) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${name} `));
    if (group.length > 0) {
      io.err(`upaas ${name}: expected one of:\n${group.map((c) => `  ${c.usage}`).join('\n')}\n`);
    } else {
      io.err(`upaas: unknown command ${JSON.stringify(name)}; run "help"\n`);
    }
    return 64;
  }
  if (args.includes('--help') || args.includes('-h')) {
    io.out(`usage: ${command.usage}\n\n${command.summary}\n`);
    return 0;
  }
  try {
    authorize(command, { ...invocation, args });
    return await command.run({ ...invocation, args });
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`upaas ${command.name}: ${error.message}\nusage: ${command.usage}\n`);
      return 64;
    }
    if (error instanceof ValidationError || error instanceof YamlError) {
      io.err(`upaas: invalid config: ${error.message}\n`);
      return 78;
    }
    if (error instanceof RepoError || error instanceof BusyError || error instanceof CommandError || error instanceof UserError) {
      io.err(`upaas ${command.name}: ${error.message}\n`);
      return 1;
    }
    // Unexpected: the detail goes to the server's log, the caller gets one line.
    console.error(`upaas ${command.name}: ${(error as Error).stack ?? String(error)}`);
    io.err(`upaas ${command.name}: system error: ${(error as Error).message}\n`);
    return 2;
  }
}
