/**
 * What every build step gets: the inputs of the build, its log, and one way to
 * run commands in the build's chroot that turns a failure into the right kind
 * of error.
 */
import type { AppSettings, Config } from '../config/config.ts';
import type { Metadata } from '../metadata/metadata.ts';
import { describeEnd } from '../process/run.ts';
import { basename } from 'node:path';
import type { Jail, JailOptions } from '../sandbox/jail.ts';
import { type SandboxOptions, runInSandbox } from '../sandbox/sandbox.ts';
import type { State } from '../state/state.ts';
import type { PackageRecord } from '../state/packages.ts';
import type { StorageHandler } from '../storage/handler.ts';
import { BuildError, type ErrorKind, userError } from './errors.ts';
import type { BuildLog } from './log.ts';
import type { OsRelease, Plan } from './plan.ts';
import type { Refreshed } from './steps/os-packages.ts';
import type { CachedTree, TreeCache } from './tree-cache.ts';
import type { Overlay } from '../sandbox/overlay.ts';
import type { Cleanup } from '../process/cleanup.ts';

export interface BuildContext {
  config: Config;
  state: State;
  storage: StorageHandler;
  log: BuildLog;
  app: string;
  /** The app's settings: apps.*, with its apps.per_app overrides. */
  settings: AppSettings;
  /** The app's config vars (`config set`): its own actions see them, nothing else does. */
  configVars: Record<string, string>;
  /** The app's bare repo on the host. */
  repo: string;
  revision: string;
  buildId: number;
  fresh: boolean;
  metadata: Metadata;
  plan: Plan;
  /** The current package: the parent of this build (null when there is none). */
  current: PackageRecord | null;
  /** The build's confinement in its temp folder: cgroup, volume (its trees live in jail.treeDir), network. */
  jail: Jail;
  /** The chroot root, in jail.treeDir. */
  root: string;
  os: OsRelease | null;
  signal?: AbortSignal;
  /** Time spent in admin and app commands (the rest is the builder's own work). */
  stats: { commandMs: number };
  /** The trees whose package lists this build refreshed (steps/os-packages.ts). */
  refreshed: Refreshed;
  /** Undoes what the build made (jail, mounts), newest first, whatever happens. */
  cleanup: Cleanup;
  cache: TreeCache;
  /** The cached tree the root is an overlay of, and that overlay (null: the root is a plain folder). */
  base: { tree: CachedTree; overlay: Overlay } | null;
}

/**
 * Environment of the setup actions. The app's actions (before, main, after)
 * see the admin's env and settings overridden by the metadata's, and over
 * those the app's config vars; the admin-only ones (system, interpreter,
 * finalize) see the admin's alone. The builder's own variables win over all.
 */
export function actionEnv(ctx: BuildContext, whose: 'app' | 'admin'): Record<string, string> {
  return commandEnv(ctx, whose);
}

/** What actionEnv reads of a build; a command in a package outside a build (core/run.ts) gives the same of its package. */
export type EnvFacts = Pick<BuildContext, 'plan' | 'configVars' | 'settings' | 'app' | 'revision' | 'fresh'>;

/** The environment of an app's (or the admin's) commands, from `facts`: see actionEnv. */
export function commandEnv(facts: EnvFacts, whose: 'app' | 'admin'): Record<string, string> {
  const admin = whose === 'admin';
  const env: Record<string, string> = {
    LANG: 'C.UTF-8',
    ...(admin ? facts.plan.adminEnv : { ...facts.plan.env, ...facts.configVars }),
    HOME: facts.settings.home,
    UPAAS_APP: facts.app,
    UPAAS_APP_HOME: facts.settings.home,
    UPAAS_REVISION: facts.revision,
    UPAAS_BRANCH: facts.settings.branch,
    UPAAS_INTERPRETER: facts.plan.interpreter.type,
    UPAAS_INTERPRETER_VERSION: facts.plan.interpreter.version,
    UPAAS_INTERPRETER_SETTINGS: JSON.stringify(admin ? facts.plan.adminSettings : facts.plan.settings),
  };
  if (facts.fresh) env.UPAAS_FRESH_PACKAGE = 'true';
  return env;
}

/** The jail options of a build's (or a run's) temp folder `dir`: builder.network, builder.limits, the disk share. */
export function jailOptions(config: Config, dir: string): JailOptions {
  const { network, limits, blocked, workers } = config.builder;
  return { network, blocked, limits, workers, stateDir: config.paths.state, name: basename(dir), keepFreeMiB: config.builder.min_free * 1024 };
}

/**
 * Runs shell commands one after another in the chroot, each with `sh -c`,
 * output indented in the log. The first failure throws a BuildError of `kind`
 * that names `what` and the command; a time limit kills the command's whole tree.
 */
export async function runCommands(
  ctx: BuildContext,
  kind: ErrorKind,
  what: string,
  commands: string[],
  options: Omit<SandboxOptions, 'jail' | 'signal'> & { shown?: string[] } = {},
): Promise<void> {
  const timeoutSeconds = options.timeoutSeconds ?? ctx.config.commands.timelimit;
  for (const [index, command] of commands.entries()) {
    // `shown` is how a command is displayed when its text holds placeholders.
    const display = options.shown?.[index] ?? command;
    ctx.log.output(`$ ${display}`);
    const started = performance.now();
    const result = await inChroot(ctx, ['/bin/sh', '-c', command], { ...options, timeoutSeconds, onLine: (line) => ctx.log.output(line) });
    ctx.stats.commandMs += performance.now() - started;
    // Before its exit status: a script that ignored a refused fork, a killed process or a full disk still ran into the limit.
    await failOnLimit(ctx);
    if (result.startError) throw new BuildError('system', `${what}: the command could not be started (${result.startError})`);
    if (!result.ok) {
      const [first = ''] = display.split('\n');
      const line = first === display ? display : `${first} …`;
      const shown = line.length > 80 ? `${line.slice(0, 77)}...` : line;
      throw new BuildError(kind, `${what} failed: \`${shown}\` ${describeEnd(result, timeoutSeconds)}`);
    }
  }
}

/** A user error naming the limit when the build ran into one of builder.limits (the kernel's counters say so). */
export async function failOnLimit(ctx: BuildContext): Promise<void> {
  const hit = await ctx.jail.limitHit();
  if (hit) throw userError(hit);
}

/** Runs `argv` in the build's chroot and jail (a builder-made command: an image check, a chown, reading a file). */
export function inChroot(ctx: BuildContext, argv: readonly string[], options: Omit<SandboxOptions, 'jail' | 'signal'> = {}) {
  return runInSandbox(ctx.root, argv, { ...options, jail: ctx.jail, signal: ctx.signal });
}
