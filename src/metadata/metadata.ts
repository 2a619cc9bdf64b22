/**
 * App metadata (`.upaas.yml` at the root of the pushed revision): its schema,
 * and reading it straight from the bare repo with git (no checkout).
 * Every problem is a user error naming the key and the revision.
 */
import { ENV_NAME, ENV_TEXT, INTERPRETER_TYPE, PACKAGE_NAME, PACKAGE_TEXT, RELATIVE_FILE } from '../config/patterns.ts';
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
import { userError } from '../build/errors.ts';
import { readFileAt } from '../git/repos.ts';

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
    versions: withDefault(list(scalarText({ pattern: /^[0-9]+(\.[0-9]+)*$/, patternText: 'a version (like "3.11")' })), []),
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

/** Reads and validates the metadata file of `revision`; any problem is a user error. */
export async function loadMetadata(repo: string, revision: string, file: string): Promise<Metadata> {
  const short = revision.slice(0, 12);
  const bytes = await readFileAt(repo, revision, file);
  if (bytes === null) {
    throw userError(`revision ${short} has no ${file}: add one to the repository root (see the README's app metadata section)`);
  }
  const source = `${file} at ${short}`;
  try {
    return validate(metadataSchema, parseYaml(bytes.toString('utf8'), source), source);
  } catch (error) {
    if (error instanceof ValidationError) {
      const [first, ...rest] = error.problems;
      const more = rest.length > 0 ? ` (and ${rest.length} more, listed in the build log)` : '';
      throw userError(`invalid metadata in ${source}: ${first}${more}`, { cause: error, detail: error.problems.join('\n') });
    }
    if (error instanceof YamlError) throw userError(`invalid metadata: ${error.message.split('\n')[0]}`, { cause: error, detail: error.message });
    throw error;
  }
}
