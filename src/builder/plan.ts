/**
 * Turns the admin config and the app metadata into what one build runs, with
 * uPaaS's precedence rules: actions are replaced (the last non-empty of global
 * < interpreter "any" < interpreter version < app wins; system, interpreter and
 * finalize are admin-only), env is merged key by key in the same order, and
 * packages are the union. Also picks the interpreter version.
 */
import type { Config, InterpreterVersionConfig } from '../config/config.ts';
import type { Metadata } from '../metadata/metadata.ts';
import { userError } from './errors.ts';

export interface Interpreter {
  type: string;
  version: string;
}

export interface Plan {
  interpreter: Interpreter;
  /** Interpreter settings for the app's actions: the admin's, overridden by the metadata's. */
  settings: Record<string, unknown>;
  /** The admin's interpreter settings alone, for the admin-only actions. */
  adminSettings: Record<string, unknown>;
  /** Admin packages for the interpreter (global, any, version). */
  interpreterPackages: string[];
  /** Env of the app's actions: the admin's, overridden key by key by the metadata's. */
  env: Record<string, string>;
  /** The admin's env alone: what system, interpreter and finalize see, so an app cannot steer them. */
  adminEnv: Record<string, string>;
  actions: {
    system: string[];
    interpreter: string[];
    before: string[];
    main: string[];
    after: string[];
    finalize: string[];
  };
  repository: { clone: string[]; update: string[]; env: Record<string, string> };
}

const numeric = (version: string) => version.split('.').map(Number);

function compareVersions(a: string, b: string): number {
  const x = numeric(a);
  const y = numeric(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? -1) - (y[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/** "3" matches "3.11" and "3"; "3.1" does not match "3.11". */
export function versionMatches(requested: string, offered: string): boolean {
  const r = numeric(requested);
  const o = numeric(offered);
  return r.length <= o.length && r.every((part, i) => part === o[i]);
}

/** The highest offered version that matches any requested one (all offered when none requested). */
export function selectVersion(offered: string[], requested: string[]): string | null {
  const candidates = requested.length === 0 ? offered : offered.filter((o) => requested.some((r) => versionMatches(r, o)));
  return [...candidates].sort(compareVersions).pop() ?? null;
}

/** The versions the admin offers for a type ("any" when the type lists no versions). */
export function offeredVersions(config: Config, type: string): string[] {
  const versions = Object.keys(config.interpreters.rest[type] ?? {}).filter((v) => v !== 'any');
  return versions.length > 0 ? versions : ['any'];
}

/**
 * Picks the interpreter for a build. An incremental build keeps the current
 * package's interpreter while the metadata still accepts it; otherwise the
 * build must be fresh, and `mustBeFresh` says why.
 */
export function chooseInterpreter(
  config: Config,
  metadata: Metadata,
  current: Interpreter | null,
  override?: string,
): { interpreter: Interpreter; mustBeFresh: string | null } {
  const { type, versions } = metadata.interpreter;
  const types = Object.keys(config.interpreters.rest);
  if (!types.includes(type)) {
    throw userError(
      `interpreter.type: ${JSON.stringify(type)} is not offered by this server (offered: ${types.join(', ') || 'none'})`,
    );
  }
  const requested = override ? [override] : versions;
  const offered = offeredVersions(config, type);
  const stillOffered = current !== null && current.type === type && offered.includes(current.version);
  if (current && !override && stillOffered) {
    const stillAccepted = current.version === 'any' || versions.length === 0 || versions.some((v) => versionMatches(v, current.version));
    if (stillAccepted) return { interpreter: current, mustBeFresh: null };
  }
  const version = offered.length === 1 && offered[0] === 'any' ? 'any' : selectVersion(offered, requested);
  if (version === null) {
    throw userError(
      `interpreter.versions: none of ${requested.join(', ')} is offered for ${type} (offered: ${offered.join(', ')})`,
    );
  }
  const interpreter = { type, version };
  let mustBeFresh: string | null = null;
  if (current && (current.type !== type || current.version !== version)) {
    const dropped = current.type === type && !stillOffered ? ` (${current.type} ${current.version} is no longer offered by this server)` : '';
    mustBeFresh = `the interpreter changes from ${current.type} ${current.version} to ${type} ${version}${dropped}`;
  }
  return { interpreter, mustBeFresh };
}

/** The last non-empty list wins. */
function lastNonEmpty(...candidates: (string[] | undefined)[]): string[] {
  return candidates.filter((c): c is string[] => c !== undefined && c.length > 0).pop() ?? [];
}

const union = (...lists: string[][]) => [...new Set(lists.flat())];

export function makePlan(config: Config, metadata: Metadata, interpreter: Interpreter): Plan {
  const global = config.interpreters;
  const byVersion = config.interpreters.rest[interpreter.type] ?? {};
  const any: InterpreterVersionConfig | undefined = byVersion.any;
  const exact: InterpreterVersionConfig | undefined = interpreter.version === 'any' ? undefined : byVersion[interpreter.version];
  const app = metadata.actions.setup;
  const adminSettings = { ...any?.settings, ...exact?.settings };
  const adminEnv = { ...global.env, ...any?.env, ...exact?.env };
  return {
    interpreter,
    settings: { ...adminSettings, ...metadata.interpreter.settings },
    adminSettings,
    interpreterPackages: union(global.packages, any?.packages ?? [], exact?.packages ?? []),
    env: { ...adminEnv, ...metadata.env },
    adminEnv,
    actions: {
      system: global.actions.setup.system,
      interpreter: lastNonEmpty(any?.actions.setup.interpreter, exact?.actions.setup.interpreter),
      before: lastNonEmpty(global.actions.setup.before, any?.actions.setup.before, exact?.actions.setup.before, app.before),
      main: lastNonEmpty(global.actions.setup.main, any?.actions.setup.main, exact?.actions.setup.main, app.main),
      after: lastNonEmpty(global.actions.setup.after, any?.actions.setup.after, exact?.actions.setup.after, app.after),
      finalize: global.actions.setup.finalize,
    },
    repository: {
      clone: lastNonEmpty(config.commands.clone, metadata.repository.clone),
      update: lastNonEmpty(config.commands.update, metadata.repository.update),
      env: metadata.repository.env,
    },
  };
}

export interface OsRelease {
  id: string;
  versionId: string;
  codename: string;
}

/** The app's OS packages for the image's distribution: `os.<id>.packages` plus `os.<id>.<version|codename>.packages`. */
export function appPackages(metadata: Metadata, os: OsRelease): string[] {
  const distro = metadata.os[os.id];
  if (!distro) return [];
  const versions = [os.versionId, os.codename].filter((v) => v !== '');
  return union(distro.packages, ...versions.map((v) => distro.rest[v]?.packages ?? []));
}

export function parseOsRelease(text: string): OsRelease {
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (match) values[match[1] as string] = (match[2] as string).replace(/^["']|["']$/g, '');
  }
  return { id: values.ID ?? '', versionId: values.VERSION_ID ?? '', codename: values.VERSION_CODENAME ?? '' };
}
