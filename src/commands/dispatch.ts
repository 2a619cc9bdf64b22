/**
 * Runs one admin command for one user, locally or over SSH: finds the
 * command, answers --help, parses the words against the command's
 * declaration, checks the declared access on the parsed repo argument, runs
 * it, and turns every error into one line and an exit code (0 ok, 1 refused or
 * user error, 2 system error, 64 usage, 78 invalid config). What it prints is
 * made safe for a terminal (process/terminal.ts).
 */
import { ValidationError } from '../config/schema.ts';
import { YamlError } from '../config/yaml.ts';
import { type Repo, openRepo } from '../core/access.ts';
import { refusalOf } from '../core/errors.ts';
import { forTerminal } from '../process/terminal.ts';
import { type Command, CommandError, type Invocation, UsageError } from './command.ts';
import { COMMANDS } from './index.ts';
import { parseWords } from './parse.ts';

export function helpText(user: Invocation['user'], local: boolean, commands: readonly Command[] = COMMANDS): string {
  const lines = [`usage: ${local ? 'upaas [-c FILE] ' : ''}COMMAND [ARGS]   (COMMAND --help for details)`, '', 'commands:'];
  for (const command of commands) {
    if (command.access === 'admin' && !user.admin) continue;
    lines.push(`  ${command.usage.padEnd(56)} ${command.summary}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The access `command` declared, checked for the parsed repo argument: the repo it may run on, or an error. */
function authorize(command: Command, invocation: Invocation, repo: string | undefined): Repo | null {
  const { user } = invocation;
  switch (command.access) {
    case 'user':
      return null;
    case 'admin':
      if (!user.admin) throw new CommandError(`${command.name}: only admins may run this command`);
      return null;
    case 'repo:read':
    case 'repo:write':
      // parseWords has made sure a declared, required repo positional is there.
      return openRepo(invocation.services(), user, repo as string, command.access === 'repo:write' ? 'write' : 'read');
  }
}

/** Errors that are a refusal or the caller's mistake, shown as their one line (exit 1): the core's (the API answers them with their status) and the commands' own. */
const isRefusal = (error: unknown): boolean => error instanceof CommandError || refusalOf(error) !== null;

/**
 * Runs `argv` for the invocation's user. `localCommands` are the command
 * line's own (serve, example): only a local caller passes them.
 */
export async function dispatch(argv: string[], given: Invocation, localCommands: readonly Command[] = []): Promise<number> {
  const commands = [...COMMANDS, ...(given.local ? localCommands : [])];
  // All a command prints ends up on a terminal, and much of it is app-made
  // (commit messages, metadata, build output): shown as data only.
  const io = { ...given.io, out: (text: string) => given.io.out(forTerminal(text)), err: (text: string) => given.io.err(forTerminal(text)) };
  const invocation: Invocation = { ...given, io };
  // Two-word commands ("repos create") before one-word ones ("build").
  const twoWords = argv.length >= 2 ? `${argv[0]} ${argv[1]}` : '';
  const named = commands.some((c) => c.name === twoWords);
  const name = named ? twoWords : argv[0];
  const words = argv.slice(named ? 2 : 1);
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(helpText(invocation.user, invocation.local, commands));
    return name === undefined && invocation.local ? 64 : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const group = commands.filter((c) => c.name.startsWith(`${name} `));
    if (group.length > 0) {
      io.err(`upaas ${name}: expected one of:\n${group.map((c) => `  ${c.usage}`).join('\n')}\n`);
    } else {
      io.err(`upaas: unknown command ${JSON.stringify(name)}; run "help"\n`);
    }
    return 64;
  }
  const end = words.indexOf('--');
  const flags = end === -1 ? words : words.slice(0, end);
  if (flags.includes('--help') || flags.includes('-h')) {
    io.out(`usage: ${command.usage}\n\n${command.summary}\n`);
    return 0;
  }
  try {
    const parsed = parseWords(command, words);
    const repo = authorize(command, invocation, parsed.repo);
    const stdin = command.stdin;
    const input = () => (stdin ? io.input(stdin.bytes) : Promise.reject(new Error(`${command.name} declares no standard input`)));
    return await command.run(invocation, { values: parsed.values, args: parsed.args, repo, rest: parsed.rest, input });
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`upaas ${command.name}: ${error.message}\nusage: ${command.usage}\n`);
      return 64;
    }
    if (error instanceof ValidationError || error instanceof YamlError) {
      io.err(`upaas: invalid config: ${error.message}\n`);
      return 78;
    }
    if (isRefusal(error)) {
      io.err(`upaas ${command.name}: ${(error as Error).message}\n`);
      return 1;
    }
    // Unexpected: the detail goes to the server's log; a remote caller gets one
    // line that names no server path, the local admin the message.
    console.error(`upaas ${command.name}: ${(error as Error).stack ?? String(error)}`);
    const shown = invocation.local ? `: ${(error as Error).message}` : ' (the server log has the detail)';
    io.err(`upaas ${command.name}: system error${shown}\n`);
    return 2;
  }
}
