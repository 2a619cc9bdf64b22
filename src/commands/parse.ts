/**
 * Parses a command's words against its declaration (Node's util.parseArgs,
 * strict): unknown options, options without their value, an option given
 * twice, missing and extra positionals are usage errors. A repo positional is
 * checked and normalised ("web.git" -> "web") here, before any access check.
 */
import { parseArgs } from 'node:util';
import { repoNameFrom } from '../git/repos.ts';
import { type Command, UsageError } from './command.ts';

export interface ParsedWords {
  values: Record<string, string | boolean | undefined>;
  args: Record<string, string | undefined>;
  /** The normalised value of the repo positional, if the command has one and it was given. */
  repo: string | undefined;
  /** The words after the declared positionals (commands that declare `rest`). */
  rest: string[];
}

export function parseWords(command: Command, words: string[]): ParsedWords {
  let parsed;
  try {
    parsed = parseArgs({ args: words, options: command.options, allowPositionals: true, strict: true, tokens: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0] ?? 'invalid arguments');
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name} given more than once`);
    seen.add(token.name);
  }
  const specs = command.positionals;
  const given = parsed.positionals;
  const required = specs.filter((p) => !p.optional).length;
  if (given.length < required) throw new UsageError(`missing ${specs[given.length]?.name ?? 'argument'}`);
  const rest = given.slice(specs.length);
  if (!command.rest && rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  if (command.rest && rest.length < command.rest.min) throw new UsageError(`missing ${command.rest.name}`);
  const args: Record<string, string | undefined> = {};
  let repo: string | undefined;
  for (const [index, spec] of specs.entries()) {
    let value = given[index];
    if (value !== undefined && spec.repo) {
      value = repoNameFrom(value);
      repo = value;
    }
    args[spec.name] = value;
  }
  return { values: parsed.values as ParsedWords['values'], args, repo, rest };
}
