/**
 * The contract of one admin command, run locally (`npx upaas COMMAND`, as the
 * local admin) or over SSH (as the key's user). Each command declares the
 * access it needs; the dispatcher checks it before `run`.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { type Config, loadConfig } from '../config/config.ts';
import type { BuildQueue } from '../core/queue.ts';
import { State } from '../state/state.ts';
import type { User } from '../state/users.ts';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** The whole of standard input (for `keys add`). */
  input: () => Promise<string>;
  /** Aborts when the caller goes away (SIGINT locally, a closed SSH channel). */
  signal?: AbortSignal;
}

/**
 * Who may run a command: any known user; an admin; or a user with at least
 * read or write on the repo named by the command's first argument.
 */
export type Access = 'user' | 'admin' | 'repo:read' | 'repo:write';

export interface Services {
  config: Config;
  state: State;
  /** The server's build queue; absent when a command runs locally, outside the server. */
  queue?: BuildQueue;
}

export interface Invocation {
  args: string[];
  io: Io;
  user: User;
  /** True for `npx upaas` on the server itself. */
  local: boolean;
  services: () => Services;
}

export interface Command {
  name: string;
  usage: string;
  summary: string;
  access: Access;
  run(invocation: Invocation): Promise<number>;
}

/** The local admin: whoever runs `npx upaas` as root on the server. */
export const LOCAL_ADMIN: User = { name: 'local-admin', admin: true, createdAt: '' };

/** A usage problem: printed as one line with the command's usage, exit code 64. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A refused or failed request: one line for the caller, exit code 1. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: T,
  positionals: { min: number; max: number },
) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0] ?? 'invalid arguments');
  }
  if (parsed.positionals.length < positionals.min) throw new UsageError('missing argument');
  if (parsed.positionals.length > positionals.max) {
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[positionals.max])}`);
  }
  return parsed;
}

/** Opens config and state on first use; `close` releases them. */
export function lazyServices(configFile: string | undefined): { get: () => Services; close: () => void } {
  let opened: Services | null = null;
  return {
    get: () => {
      if (!opened) {
        const config = loadConfig(configFile);
        opened = { config, state: State.open(config.paths.state) };
      }
      return opened;
    },
    close: () => opened?.state.close(),
  };
}
