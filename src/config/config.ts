/**
 * The admin configuration (`upaas.yml`): its schema with a default for every
 * key, loading (YAML with !include and merge keys) and path resolution.
 * Order: defaults, then the file, then UPAAS_CONFIG only choosing the file;
 * one validation pass reports every problem with its key path.
 */
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import {
  ABSOLUTE_PATH,
  BRANCH,
  ENV_NAME,
  ENV_TEXT,
  INTERPRETER_TYPE,
  INTERPRETER_TYPE_TEXT,
  NETWORK,
  NETWORK_TEXT,
  PACKAGE_NAME,
  PACKAGE_TEXT,
  RELATIVE_FILE,
  REPO_NAME,
  isAppName,
  USER_OR_ID,
  VERSION_KEY,
  VERSION_TEXT,
} from './patterns.ts';
import {
  type Infer,
  ValidationError,
  anything,
  boolean,
  commands,
  defaulted,
  integer,
  list,
  object,
  oneOf,
  partial,
  record,
  scalarText,
  string,
  validate,
  withDefault,
} from './schema.ts';
import { EVENT_NAMES } from '../events/events.ts';
import { DEFAULT_INTERPRETERS } from './default-interpreters.ts';
import { loadYamlFile } from './yaml.ts';

const envMap = () => withDefault(record(scalarText(), { keyPattern: ENV_NAME, keyText: ENV_TEXT }), {});
const packageList = () => withDefault(list(string({ pattern: PACKAGE_NAME, patternText: PACKAGE_TEXT })), []);
const action = () => withDefault(commands(), []);

/**
 * The settings of an app: `apps.*`, which `apps.per_app.APP` may override key
 * by key (appSettings gives the merged view).
 */
const appShape = {
  uid: withDefault(scalarText({ pattern: USER_OR_ID, patternText: 'a user name or numeric id' }), 'www-data'),
  gid: withDefault(scalarText({ pattern: USER_OR_ID, patternText: 'a group name or numeric id' }), 'www-data'),
  home: withDefault(string({ pattern: ABSOLUTE_PATH, patternText: 'an absolute path like "/home/app"' }), '/home/app'),
  branch: withDefault(string({ pattern: BRANCH, patternText: 'a branch name like "main"' }), 'main'),
  metadata: withDefault(string({ pattern: RELATIVE_FILE, patternText: 'a path inside the repository' }), '.upaas.yml'),
  packages_per_app: withDefault(integer({ min: 2 }), 5),
  builds_per_app: withDefault(integer({ min: 1 }), 50),
  reject_failed_builds: withDefault(boolean(), false),
  deploy: defaulted(
    object({
      commands: withDefault(commands(), []),
      timelimit: withDefault(integer({ min: 1 }), 600),
      network: withDefault(oneOf(['host', 'isolated', 'none']), 'host'),
      env: envMap(),
    }),
  ),
  webhooks: withDefault(
    list(
      object({
        url: string({ pattern: /^https?:\/\/[^\s]+$/, patternText: 'an http:// or https:// URL' }),
        secret: string({ pattern: /^.{16,}$/s, patternText: 'a secret of at least 16 characters' }),
        events: withDefault(list(oneOf(EVENT_NAMES)), [...EVENT_NAMES]),
      }),
    ),
    [],
  ),
};

const interpreterVersionSchema = defaulted(
  object({
    packages: packageList(),
    env: envMap(),
    settings: withDefault(record(anything()), {}),
    actions: defaulted(
      object({
        setup: defaulted(
          object({ interpreter: action(), before: action(), main: action(), after: action() }),
        ),
      }),
    ),
  }),
);

const interpreterTypeSchema = record(interpreterVersionSchema, { keyPattern: VERSION_KEY, keyText: VERSION_TEXT });

export const configSchema = object({
  paths: defaulted(
    object({
      repos: withDefault(string({ nonEmpty: true }), 'repos'),
      workdir: withDefault(string({ nonEmpty: true }), 'state/work'),
      state: withDefault(string({ nonEmpty: true }), 'state'),
    }),
  ),
  storage: defaulted(
    object({
      handler: withDefault(oneOf(['local']), 'local'),
      settings: withDefault(record(anything()), {}),
    }),
  ),
  builder: defaulted(
    object({
      compression: withDefault(oneOf(['zstd', 'gzip']), 'zstd'),
      level: withDefault(integer({ min: 1, max: 19 }), 3),
      workers: withDefault(integer({ min: 1, max: 64 }), 2),
      grace: withDefault(integer({ min: 0 }), 120),
      timelimit: withDefault(integer({ min: 1 }), 3600),
      min_free: withDefault(integer({ min: 0 }), 2),
      logsize: withDefault(integer({ min: 1, max: 256 }), 8),
      network: withDefault(oneOf(['isolated', 'none', 'host']), 'isolated'),
      blocked: withDefault(list(string({ pattern: NETWORK, patternText: NETWORK_TEXT })), []),
      // Unpacked trees of current packages and of the system image, kept for the next build (builder/tree-cache.ts):
      // at most `trees` of them and `size` GiB on disk, the least recently used dropped first; 0 turns the cache off.
      // A tree is at most `layers` layers deep: past that, the layers over its bottom one are squashed into one.
      cache: defaulted(
        object({
          trees: withDefault(integer({ min: 0 }), 8),
          size: withDefault(integer({ min: 0 }), 20),
          layers: withDefault(integer({ min: 2, max: 64 }), 16),
        }),
      ),
      limits: defaulted(
        object({
          processes: withDefault(integer({ min: 0 }), 2048),
          memory: withDefault(integer({ min: 0 }), 4096),
          disk: withDefault(integer({ min: 0 }), 20480),
        }),
      ),
    }),
  ),
  server: defaulted(
    object({
      host: withDefault(string({ nonEmpty: true }), '0.0.0.0'),
      git_per_user: withDefault(integer({ min: 1 }), 8),
      ssh: defaulted(
        object({
          port: withDefault(integer({ min: 0, max: 65535 }), 2222),
          login_grace: withDefault(integer({ min: 1 }), 30),
          max_sessions: withDefault(integer({ min: 1 }), 10),
          max_connections: withDefault(integer({ min: 1 }), 200),
          max_connections_per_address: withDefault(integer({ min: 1 }), 20),
        }),
      ),
      http: defaulted(
        object({
          port: withDefault(integer({ min: 0, max: 65535 }), 8080),
          headers_timeout: withDefault(integer({ min: 1 }), 20),
          request_timeout: withDefault(integer({ min: 1 }), 900),
          body_timeout: withDefault(integer({ min: 1 }), 30),
        }),
      ),
      // Webhook deliveries (core/webhooks.ts): seconds per try, tries in all, the first retry's wait (doubled after each).
      webhooks: defaulted(
        object({
          timeout: withDefault(integer({ min: 1, max: 300 }), 10),
          tries: withDefault(integer({ min: 1, max: 10 }), 3),
          backoff: withDefault(integer({ min: 0, max: 3600 }), 5),
        }),
      ),
    }),
  ),
  admins: withDefault(list(object({ name: string({ nonEmpty: true }), key: string({ nonEmpty: true }) })), []),
  bootstrap: defaulted(
    object({
      commands: withDefault(commands(), [
        'debootstrap --variant=minbase bookworm %workdir% http://deb.debian.org/debian',
      ]),
      env: envMap(),
      timelimit: withDefault(integer({ min: 1 }), 1800),
      maxage: withDefault(integer({ min: 0 }), 7),
      packages: withDefault(list(string({ pattern: PACKAGE_NAME, patternText: PACKAGE_TEXT })), [
        'git',
        'ca-certificates',
      ]),
    }),
  ),
  commands: defaulted(
    object({
      timelimit: withDefault(integer({ min: 1 }), 900),
      clone: withDefault(commands(), [
        'git clone --quiet --no-checkout "$UPAAS_REPOSITORY" "$UPAAS_APP_HOME"',
        'git -C "$UPAAS_APP_HOME" checkout --quiet --force -B "$UPAAS_BRANCH" "$UPAAS_REVISION"',
      ]),
      update: withDefault(commands(), [
        'git fetch --quiet --force --tags "$UPAAS_REPOSITORY" "+refs/heads/*:refs/remotes/origin/*"',
        'git checkout --quiet --force -B "$UPAAS_BRANCH" "$UPAAS_REVISION"',
      ]),
      install: defaulted(
        object({
          cmd: withDefault(string({ nonEmpty: true }), 'apt-get install --yes --no-install-recommends %package%'),
          env: withDefault(record(scalarText(), { keyPattern: ENV_NAME, keyText: ENV_TEXT }), {
            DEBIAN_FRONTEND: 'noninteractive',
          }),
          // Exits 0 when %package% is installed: such a package is not installed again ('' checks nothing).
          check: withDefault(string(), "dpkg-query --show --showformat='${db:Status-Status}' %package% | grep -qx installed"),
          // Before the first install a build runs in a tree, once: the package lists (finalize removes them).
          refresh: withDefault(commands(), ['apt-get update -q']),
        }),
      ),
    }),
  ),
  apps: defaulted(
    object({
      ...appShape,
      per_app: withDefault(record(partial(appShape), { keyPattern: REPO_NAME, keyText: 'a repository name' }), {}),
    }),
  ),
  interpreters: defaulted(
    object(
      {
        env: envMap(),
        packages: packageList(),
        actions: defaulted(
          object({
            setup: defaulted(
              object({
                system: withDefault(commands(), []),
                before: action(),
                main: action(),
                after: action(),
                finalize: withDefault(commands(), ['apt-get clean', 'rm -rf /var/lib/apt/lists/*']),
              }),
            ),
          }),
        ),
      },
      { rest: { schema: interpreterTypeSchema, keyPattern: INTERPRETER_TYPE, keyText: INTERPRETER_TYPE_TEXT } },
    ),
  ),
});

export type Config = Infer<typeof configSchema> & {
  /** The file the config came from (null: embedded defaults only). */
  file: string | null;
};
/** One app's settings: apps.*, overridden by apps.per_app.APP. */
export type AppSettings = Omit<Config['apps'], 'per_app'>;

export function appSettings(config: Config, app: string): AppSettings {
  const { per_app: perApp, ...global } = config.apps;
  return { ...global, ...Object.fromEntries(Object.entries(perApp[app] ?? {}).filter(([, value]) => value !== undefined)) };
}

export type InterpreterVersionConfig = Infer<typeof interpreterVersionSchema>;

/** Which config file to load: -c FILE, else UPAAS_CONFIG, else ./upaas.yml. */
export function configPath(explicit?: string): { path: string; required: boolean } {
  if (explicit) return { path: resolve(explicit), required: true };
  if (process.env.UPAAS_CONFIG) return { path: resolve(process.env.UPAAS_CONFIG), required: true };
  return { path: resolve('upaas.yml'), required: false };
}

/**
 * Loads and validates the admin config. Relative paths are resolved against
 * the config file's folder. Throws YamlError or ValidationError.
 */
export function loadConfig(explicit?: string): Config {
  const { path, required } = configPath(explicit);
  const present = required || existsSync(path);
  const raw = present ? loadYamlFile(path) : {};
  return parseConfig(raw, present ? path : null);
}

/** Validates an already-parsed config document (used by loadConfig and tests). */
export function parseConfig(raw: unknown, file: string | null): Config {
  const source = file ?? 'embedded defaults';
  const parsed = validate(configSchema, withoutExtensions(raw), source);
  const badNetworks = parsed.builder.blocked.filter((network) => {
    const [address = '', prefix] = network.split('/');
    const family = isIP(address);
    return family === 0 || (prefix !== undefined && Number(prefix) > (family === 4 ? 32 : 128));
  });
  if (badNetworks.length > 0) {
    throw new ValidationError(source, badNetworks.map((network) => `builder.blocked: expected ${NETWORK_TEXT}, got ${JSON.stringify(network)}`));
  }
  const badApps = Object.keys(parsed.apps.per_app).filter((name) => !isAppName(name));
  if (badApps.length > 0) {
    throw new ValidationError(
      source,
      badApps.map((name) => `apps.per_app.${name}: invalid key: expected an app name as the server keeps it (no ".git" at the end, no "..")`),
    );
  }
  const hooks = [...parsed.apps.webhooks.map((hook, i) => [`apps.webhooks[${i}].url`, hook.url] as const),
    ...Object.entries(parsed.apps.per_app).flatMap(([app, over]) => (over.webhooks ?? []).map((hook, i) => [`apps.per_app.${app}.webhooks[${i}].url`, hook.url] as const))];
  const badUrls = hooks.filter(([, url]) => !URL.canParse(url));
  if (badUrls.length > 0) throw new ValidationError(source, badUrls.map(([path, url]) => `${path}: expected an http:// or https:// URL, got ${JSON.stringify(url)}`));
  if (parsed.builder.compression === 'gzip' && parsed.builder.level > 9) {
    throw new ValidationError(source, [`builder.level: expected 1 to 9 for gzip, got ${parsed.builder.level}`]);
  }
  if (Object.keys(parsed.interpreters.rest).length === 0) {
    const defaults = validate(configSchema, { interpreters: DEFAULT_INTERPRETERS }, 'embedded interpreter defaults');
    parsed.interpreters.rest = defaults.interpreters.rest;
  }
  const base = file ? dirname(file) : process.cwd();
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  parsed.paths = { repos: at(parsed.paths.repos), workdir: at(parsed.paths.workdir), state: at(parsed.paths.state) };
  return { ...parsed, file };
}

/** Top-level keys starting with "x-" hold YAML anchors for reuse (as in compose files); they are not settings. */
function withoutExtensions(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  return Object.fromEntries(Object.entries(raw).filter(([key]) => !key.startsWith('x-')));
}
