/** The contract of one CLI (and later SSH) admin command. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Config } from '../config/config.ts';
import { loadConfig } from '../config/config.ts';
import { State } from '../state/state.ts';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export interface Command {
  name: string;
  usage: string;
  summary: string;
  /** Who may run it; the local CLI runs as the admin. Enforced by the SSH transport later. */
  permission: 'admin' | 'read' | 'write';
  run(args: string[], io: Io, globals: Globals): Promise<number>;
}

export interface Globals {
  configFile?: string;
}

/** A usage problem: printed as one line with the command's usage, exit code 64. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, positionals: { min: number; max: number }) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0] ?? 'invalid arguments');
  }
  if (parsed.positionals.length < positionals.min) throw new UsageError('missing argument');
  if (parsed.positionals.length > positionals.max) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[positionals.max])}`);
  return parsed;
}

/** Loads config and opens state for a command, closing state afterwards. */
export async function withState<T>(globals: Globals, body: (config: Config, state: State) => Promise<T>): Promise<T> {
  const config = loadConfig(globals.configFile);
  const state = State.open(config.paths.state);
  try {
    return await body(config, state);
  } finally {
    state.close();
  }
}
