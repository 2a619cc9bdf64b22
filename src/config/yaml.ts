/**
 * YAML loading shared by the admin config and app metadata: YAML 1.2 core
 * scalars except floats (so `3.10` stays the version "3.10", not 3.1), merge
 * keys (`<<: *base`), and, for files on disk, `!include other.yml` resolved
 * relative to the including file.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  Schema,
  YAMLException,
  boolCoreTag,
  defineScalarTag,
  intCoreTag,
  loadAll,
  mapTag,
  mergeTag,
  nullCoreTag,
  seqTag,
  strTag,
} from 'js-yaml';

const BASE_TAGS = [strTag, seqTag, mapTag, nullCoreTag, boolCoreTag, intCoreTag, mergeTag];

/** Schema for text that is not a file (app metadata read from git): no includes. */
export const TEXT_SCHEMA = new Schema(BASE_TAGS);

export class YamlError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
    this.name = 'YamlError';
  }
}

/** Parses YAML text; a syntax error names the source and the position. */
export function parseYaml(text: string, source: string, schema: Schema = TEXT_SCHEMA): unknown {
  try {
    const documents = loadAll(text, { schema, filename: source });
    if (documents.length > 1) throw new YamlError(source, 'expected one YAML document, found several (---)');
    return documents[0] ?? null;
  } catch (error) {
    if (error instanceof YAMLException) throw new YamlError(source, `invalid YAML: ${error.message}`);
    if (error instanceof YamlError) throw error;
    throw new YamlError(source, error instanceof Error ? error.message : String(error));
  }
}

/** Loads a YAML file, following `!include` tags (relative paths, no cycles). */
export function loadYamlFile(path: string, chain: string[] = []): unknown {
  const file = resolve(path);
  if (chain.includes(file)) {
    throw new YamlError(file, `!include cycle: ${[...chain, file].join(' -> ')}`);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : String(error);
    const from = chain.length > 0 ? ` (included from ${chain[chain.length - 1]})` : '';
    throw new YamlError(file, `${reason}${from}`);
  }
  const include = defineScalarTag<unknown>('!include', {
    resolve: (source) => {
      const target = source.trim();
      if (target === '') throw new YamlError(file, '!include needs a file name');
      return loadYamlFile(resolve(dirname(file), target), [...chain, file]);
    },
    identify: () => false,
  });
  return parseYaml(text, file, new Schema([...BASE_TAGS, include]));
}
