/**
 * The contract of one admin command, run locally (`npx upaas COMMAND`, as the
 * local admin) or over SSH (as the key's user). A command declares its
 * positionals, its options, what it reads from standard input and the access
 * it needs; the dispatcher parses the words against that declaration first and
 * checks the access on the parsed repo argument second, so no order of words
 * can make it check one repo and run on another.
 */
import type { Readable } from 'node:stream';
import type { Services } from '../core/services.ts';
import type { Repo } from '../core/access.ts';
import type { User } from '../state/users.ts';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Resolves once what was written so far is mostly on its way (long outputs wait for it between chunks). */
  drain: () => Promise<void>;
  /** Standard input, at most `limit` bytes; rejects with a CommandError when there is more. */
  input: (limit: number) => Promise<string>;
  /**
   * Sends `data` as it is, bytes not text, to standard output, as fast as the
   * caller takes it; rejects when `data` errors (the caller then sees a short
   * output and the command's exit code).
   */
  binary: (data: Readable) => Promise<void>;
  /** As `binary`, to standard error: a command's own stderr as bytes, with the caller's flow control. */
  binaryErr: (data: Readable) => Promise<void>;
  /** Aborts when the caller goes away (SIGINT locally, a closed SSH channel). */
  signal?: AbortSignal;
}

export interface OptionSpec {
  type: 'boolean' | 'string';
  /** The value's placeholder in the usage line (string options), e.g. "REV". */
  value?: string;
}

export interface PositionalSpec {
  /** Its name in `args`, and its placeholder in the usage line unless `shown` is given, e.g. "APP". */
  name: string;
  /** How the usage line shows it, e.g. "read|write". */
  shown?: string;
  optional?: boolean;
  /** A repo name: checked with repoNameFrom while parsing, and the argument a repo access rule applies to. */
  repo?: boolean;
}

/**
 * Who may run a command: any known user; an admin; or a user with at least
 * read or write on the repo named by the command's `repo` positional.
 */
export type Access = 'user' | 'admin' | 'repo:read' | 'repo:write';

type Options = Record<string, OptionSpec>;

/** Parsed option values: booleans and strings, absent when not given. */
export type Values<O extends Options> = { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string };

/** Parsed positionals by name; optional ones may be absent. */
export type Positionals<P extends readonly PositionalSpec[]> = {
  [S in P[number] as S['name']]: S extends { optional: true } ? string | undefined : string;
};

export interface Invocation {
  io: Io;
  user: User;
  /** True for `npx upaas` on the server itself. */
  local: boolean;
  services: () => Services;
}

/** What a command's `run` gets besides the invocation: its parsed words, its repo, its input. */
export interface Parsed<O extends Options, P extends readonly PositionalSpec[], A extends Access = Access> {
  values: Values<O>;
  args: Positionals<P>;
  /** The repo the access was checked on (repo:read / repo:write commands): the one name to work with. */
  repo: A extends 'repo:read' | 'repo:write' ? Repo : null;
  /** The words after the positionals, when the command declares `rest`. */
  rest: string[];
  /** Standard input within the declared limit. */
  input: () => Promise<string>;
}

/** Words after the positionals that a command takes as a list, e.g. "KEY=VALUE...": at least `min` of them. */
export interface RestSpec {
  name: string;
  min: number;
}

export interface CommandSpec<O extends Options, P extends readonly PositionalSpec[], A extends Access> {
  name: string;
  summary: string;
  positionals: P;
  rest?: RestSpec;
  options: O;
  /** Standard input the command reads: at most `bytes`, shown as `< what` in the usage line. */
  stdin?: { bytes: number; what: string };
  access: A;
  run(invocation: Invocation, parsed: Parsed<O, P, A>): Promise<number>;
}

/** A command as the dispatcher sees it. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  access: Access;
  positionals: readonly PositionalSpec[];
  rest?: RestSpec;
  options: Options;
  stdin?: { bytes: number; what: string };
  run(invocation: Invocation, parsed: UntypedParsed): Promise<number>;
}

/** Parsed words as the dispatcher holds them; defineCommand gives each command its typed view. */
export interface UntypedParsed {
  values: Record<string, string | boolean | undefined>;
  args: Record<string, string | undefined>;
  repo: Repo | null;
  rest: string[];
  input: () => Promise<string>;
}

/** Declares a command; its usage line is made from the declaration. */
export function defineCommand<const O extends Options, const P extends readonly PositionalSpec[], const A extends Access>(spec: CommandSpec<O, P, A>): Command {
  const repos = spec.positionals.filter((p) => p.repo);
  if (repos.length > 1) throw new Error(`${spec.name}: at most one repo positional`);
  if ((spec.access === 'repo:read' || spec.access === 'repo:write') && repos.length !== 1) {
    throw new Error(`${spec.name}: a repo access rule needs a repo positional`);
  }
  const words = [
    spec.name,
    ...spec.positionals.map((p) => (p.optional ? `[${p.shown ?? p.name}]` : (p.shown ?? p.name))),
    ...(spec.rest ? [spec.rest.min > 0 ? `${spec.rest.name}...` : `[${spec.rest.name}...]`] : []),
    ...Object.entries(spec.options).map(([name, o]) => (o.type === 'boolean' ? `[--${name}]` : `[--${name} ${o.value ?? 'VALUE'}]`)),
    ...(spec.stdin ? [`< ${spec.stdin.what}`] : []),
  ];
  return {
    name: spec.name,
    summary: spec.summary,
    usage: words.join(' '),
    access: spec.access,
    positionals: spec.positionals,
    rest: spec.rest,
    options: spec.options,
    stdin: spec.stdin,
    // The dispatcher parsed the words against this very declaration.
    run: spec.run as unknown as Command['run'],
  };
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
