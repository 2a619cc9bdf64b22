/**
 * App metadata (`.upaas.yml` at the root of the pushed revision): its schema,
 * and reading it straight from the bare repo with git (no checkout).
 * Every problem is a user error naming the key and the revision.
 */
import { ENV_NAME, ENV_TEXT, INTERPRETER_TYPE, PACKAGE_NAME, PACKAGE_TEXT, RELATIVE_FILE, VERSION } from '../config/patterns.ts';
import {
  type Infer,
  ValidationError,
  anything,
  commands,
  defaulted,
  list,
  object,
  record,
  scalarText,
  string,
  validate,
  withDefault,
} from '../config/schema.ts';
import { YamlError, parseYaml } from '../config/yaml.ts';
import { userError } from '../builder/errors.ts';
import { FileTooLargeError, readFileAt } from '../git/repos.ts';

const packages = () =>
  withDefault(list(string({ pattern: PACKAGE_NAME, patternText: PACKAGE_TEXT })), []);
const envMap = () => withDefault(record(scalarText(), { keyPattern: ENV_NAME, keyText: ENV_TEXT }), {});
const action = () => withDefault(commands(), []);

/** `files` keys: paths relative to the app folder, or absolute ones inside apps.home (checked when written). */
const FILE_KEY = new RegExp(`(${RELATIVE_FILE.source})|(^/[^\\0]+$)`);

const osVersionSchema = defaulted(object({ packages: packages() }));
const distroSchema = defaulted(
  object(
    { packages: packages() },
    { rest: { schema: osVersionSchema, keyPattern: /^[a-z0-9][a-z0-9.]*$/, keyText: 'a release version or codename (like "12" or "bookworm")' } },
  ),
);

export const metadataSchema = object({
  os: withDefault(record(distroSchema, { keyPattern: /^[a-z][a-z0-9]*$/, keyText: 'a distribution id (like "debian")' }), {}),
  interpreter: object({
    type: string({ pattern: INTERPRETER_TYPE, patternText: 'an interpreter type (like "python")' }),
    versions: withDefault(list(scalarText({ pattern: VERSION, patternText: 'a version (like "3.11")' })), []),
    settings: withDefault(record(anything()), {}),
  }),
  repository: defaulted(object({ clone: action(), update: action(), env: envMap() })),
  env: envMap(),
  actions: defaulted(object({ setup: defaulted(object({ before: action(), main: action(), after: action() })) })),
  files: withDefault(
    record(scalarText(), { keyPattern: FILE_KEY, keyText: 'a path inside the app folder' }),
    {},
  ),
});

export type Metadata = Infer<typeof metadataSchema>;

/** The metadata file's size limit: room for any sensible `files`, far from a memory problem. */
export const MAX_METADATA_BYTES = 1024 * 1024;
/** What the parsed metadata may expand to (YAML aliases can make a small file huge): about its JSON size. */
const MAX_EXPANDED_BYTES = 4 * MAX_METADATA_BYTES;
/**
 * env, repository.env and the interpreter settings end up in the environment
 * of every action; the kernel refuses an exec whose single strings pass 128 KiB
 * (E2BIG), so they are kept well below that, together.
 */
export const MAX_ENV_BYTES = 64 * 1024;

/** About the JSON size of `value`, walking shared (aliased) parts every time; stops once past `limit`. */
function expandedBytes(value: unknown, limit: number): number {
  let total = 0;
  const walk = (node: unknown): void => {
    if (total > limit) return;
    if (typeof node === 'string') total += node.length + 2;
    else if (Array.isArray(node)) {
      total += 2;
      for (const item of node) walk(item);
    } else if (node !== null && typeof node === 'object') {
      total += 2;
      for (const [key, item] of Object.entries(node)) {
        total += key.length + 4;
        walk(item);
      }
    } else total += String(node).length;
  };
  walk(value);
  return total;
}

/** The bytes variables take in an environment ("KEY=VALUE" and its end). */
export function envBytesOf(env: Record<string, string>): number {
  return Object.entries(env).reduce((sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value) + 2, 0);
}

/** The environment bytes an app's metadata adds to its actions. */
export function envBytes(metadata: Metadata): number {
  return envBytesOf(metadata.env) + envBytesOf(metadata.repository.env) + JSON.stringify(metadata.interpreter.settings).length;
}

/** Reads and validates the metadata file of `revision`; any problem is a user error. */
export async function loadMetadata(repo: string, revision: string, file: string): Promise<Metadata> {
  const short = revision.slice(0, 12);
  let bytes: Buffer | null;
  try {
    bytes = await readFileAt(repo, revision, file, MAX_METADATA_BYTES);
  } catch (error) {
    if (!(error instanceof FileTooLargeError)) throw error;
    throw userError(`${file} at ${short} is ${error.bytes} bytes; metadata may be at most ${MAX_METADATA_BYTES} bytes`);
  }
  if (bytes === null) {
    throw userError(`revision ${short} has no ${file}: add one to the repository root (see the README's app metadata section)`);
  }
  const source = `${file} at ${short}`;
  let metadata: Metadata;
  try {
    const parsed = parseYaml(bytes.toString('utf8'), source);
    if (expandedBytes(parsed, MAX_EXPANDED_BYTES) > MAX_EXPANDED_BYTES) {
      throw userError(`invalid metadata in ${source}: it expands to more than ${MAX_EXPANDED_BYTES} bytes (through YAML aliases?)`);
    }
    metadata = validate(metadataSchema, parsed, source);
  } catch (error) {
    if (error instanceof ValidationError) {
      const [first, ...rest] = error.problems;
      const more = rest.length > 0 ? ` (and ${rest.length} more, listed in the build log)` : '';
      throw userError(`invalid metadata in ${source}: ${first}${more}`, { cause: error, detail: error.problems.join('\n') });
    }
    if (error instanceof YamlError) throw userError(`invalid metadata: ${error.message.split('\n')[0]}`, { cause: error, detail: error.message });
    throw error;
  }
  const env = envBytes(metadata);
  if (env > MAX_ENV_BYTES) {
    throw userError(`invalid metadata in ${source}: env, repository.env and interpreter.settings take ${env} bytes together; the limit is ${MAX_ENV_BYTES}`);
  }
  return metadata;
}
