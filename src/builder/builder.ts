/**
 * The package builder: one build of one app, read top to bottom like the
 * seed's list of steps. Inputs are checked (revision, metadata, interpreter)
 * before any image is touched; the workdir, its mounts and processes are gone
 * when build() returns, whatever happened; only a complete build changes the
 * app's current package.
 */
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { type Config, appSettings } from '../config/config.ts';
import type { State } from '../state/state.ts';
import type { StorageHandler, StoredObject } from '../storage/handler.ts';
import { RepoError, changelog, commitInfo, repoPath, resolveRevision } from '../git/repos.ts';
import { MAX_ENV_BYTES, envBytes, envBytesOf, loadMetadata } from '../metadata/metadata.ts';
import { type BuildContext, failOnLimit, jailOptions } from './context.ts';
import { shortOfSpace } from './free-space.ts';
import { BuildError, asBuildError, cancelledError, systemError, userError } from './errors.ts';
import { BuildLog, failureLine, formatBytes, logFile, serverFolders } from './log.ts';
import { chooseInterpreter, makePlan } from './plan.ts';
import { checkoutApp } from './steps/checkout.ts';
import { fileTarget } from './steps/files.ts';
import { installAppPackages } from './steps/dependencies.ts';
import { prepareBase } from './steps/image.ts';
import { installInterpreter } from './steps/interpreter.ts';
import { runSetupActions } from './steps/actions.ts';
import { archivePackage } from './steps/archive.ts';
import { keepTree, prepareTree } from './steps/tree.ts';
import { TreeCache } from './tree-cache.ts';
import { buildFolderPrefix } from './folder-names.ts';
import { Cleanup } from '../process/cleanup.ts';
import { serverLog } from '../process/server-log.ts';
import { Jail } from '../sandbox/jail.ts';
import { removeTree } from '../sandbox/mounts.ts';
import type { PackageRecord } from '../state/packages.ts';
import type { MadeCurrent } from '../state/releases.ts';
import type { FrameIndex } from '../archive/frames.ts';

export interface BuildRequest {
  app: string;
  /** Branch, tag or sha; default: the deploy branch. */
  revision?: string;
  fresh?: boolean;
  /** A fresh build with this interpreter version. */
  interpreterVersion?: string;
  requestedBy?: string;
  /** Receives each log line as it happens. */
  onLine?: (line: string) => void;
  /** Called once the build has its number. */
  onStart?: (buildId: number) => void;
  /**
   * Called once the package is current, before the build ends: the deploy of
   * the release (its lines go to `log`). A BuildError it throws fails the
   * build; it has put back what it changed.
   */
  afterCurrent?: (pkg: PackageRecord, made: MadeCurrent, log: { step(text: string): void; output(text: string): void }) => Promise<void>;
  signal?: AbortSignal;
  /**
   * The bare repo to build from instead of the app's own (server-made only,
   * never from user input): a pre-receive build reads the pushed objects
   * before the ref moves.
   */
  sourceRepo?: string;
}

export interface BuildTimings {
  totalMs: number;
  /** Spent in admin and app commands; totalMs - commandMs is the builder's own work. */
  commandMs: number;
}

export type BuildOutcome =
  | { ok: true; buildId: number; package: PackageRecord; timings: BuildTimings }
  | { ok: false; buildId: number | null; error: BuildError; timings: BuildTimings };

/** What a build needs of the server: config, state and storage (a build never uses the queue that runs it). */
export interface BuildServices {
  config: Config;
  state: State;
  storage: StorageHandler;
}

export async function build(services: BuildServices, request: BuildRequest): Promise<BuildOutcome> {
  const { config, state } = services;
  const sink = request.onLine ?? (() => undefined);
  const started = performance.now();
  const stats = { commandMs: 0 };
  const timings = (): BuildTimings => ({ totalMs: performance.now() - started, commandMs: stats.commandMs });
  let repo: string;
  try {
    repo = request.sourceRepo ?? repoPath(config.paths.repos, request.app);
  } catch (error) {
    const failure = userError((error as Error).message);
    sink(failureLine(failure));
    return { ok: false, buildId: null, error: failure, timings: timings() };
  }
  const record = state.builds.start(request.app, { fresh: Boolean(request.fresh), requestedBy: request.requestedBy });
  request.onStart?.(record.id);
  // The app's config vars, read once: its actions see them, its log (which readers may read) shows them masked.
  const configVars = state.configVars.get(request.app);
  const hidden = [...serverFolders(config.paths, services.storage.hostFolders), ...maskedValues(configVars)].sort((a, b) => b[0].length - a[0].length);
  const log = new BuildLog(sink, logFile(config.paths.state, request.app, record.id), config.builder.logsize * 1024 * 1024, hidden);
  log.step(`Build ${record.id} of ${request.app}${request.fresh ? ' (fresh)' : ''}`);
  // builder.timelimit bounds the whole build: past it, every step's programs get the same abort as a cancel.
  const limit = config.builder.timelimit;
  const overtime = AbortSignal.timeout(limit * 1000);
  const signal = request.signal ? AbortSignal.any([request.signal, overtime]) : overtime;
  try {
    const { pkg, made } = await runBuild(services, { ...request, signal }, repo, record.id, log, stats, configVars);
    await request.afterCurrent?.(pkg, made, log);
    log.step(`Package ${pkg.id} (${formatBytes(pkg.bytes)}) is now current for ${request.app}`);
    state.builds.finish(record.id, { status: 'succeeded', packageId: pkg.id, log: log.text() });
    return { ok: true, buildId: record.id, package: pkg, timings: timings() };
  } catch (thrown) {
    // Once cancelled or over time, whatever failed (a killed tar, a command, a check) failed for that reason.
    const error = request.signal?.aborted
      ? cancelledError()
      : overtime.aborted
        ? userError(`the build took longer than builder.timelimit (${limit} s) and was stopped`)
        : asBuildError(thrown);
    log.failure(error);
    state.builds.finish(record.id, { status: 'failed', errorKind: error.kind, errorMessage: log.hide(error.message), log: log.text() });
    return { ok: false, buildId: record.id, error, timings: timings() };
  } finally {
    await log.close();
  }
}

/** Shorter values would mask ordinary words of the output. */
const MIN_MASKED = 4;

/** Each line of each config var value (of MIN_MASKED characters or more), with what the log shows instead. */
function maskedValues(vars: Record<string, string>): [string, string][] {
  const parts = Object.values(vars).flatMap((value) => value.split(/\r?\n/));
  return [...new Set(parts.filter((part) => part.length >= MIN_MASKED))].map((part): [string, string] => [part, '********']);
}

/** Runs `check`; a user error it throws is reported as invalid metadata in `source`. */
function inMetadata<T>(source: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof BuildError && error.kind === 'user') {
      throw userError(`invalid metadata in ${source}: ${error.message}`, { cause: error, detail: error.detail });
    }
    throw error;
  }
}

async function runBuild(
  services: BuildServices,
  request: BuildRequest,
  repo: string,
  buildId: number,
  log: BuildLog,
  stats: BuildContext['stats'],
  configVars: Record<string, string>,
): Promise<{ pkg: PackageRecord; made: MadeCurrent }> {
  const { config, state, storage } = services;
  const app = request.app;
  const settings = appSettings(config, app);

  // Inputs first: nothing is unpacked until they are known to be good.
  let revision: string;
  try {
    // The deploy branch by its full name: a tag that a writer named like the branch must not win.
    revision = await resolveRevision(repo, request.revision ?? `refs/heads/${settings.branch}`);
  } catch (error) {
    if (error instanceof RepoError) throw userError(error.message);
    throw error;
  }
  state.builds.update(buildId, { revision });
  const metadata = await loadMetadata(repo, revision, settings.metadata);
  const current = state.packages.current(app);
  // Problems found in the metadata here name the file and the revision like the schema's do.
  const source = `${settings.metadata} at ${revision.slice(0, 12)}`;
  inMetadata(source, () => {
    for (const key of Object.keys(metadata.files)) fileTarget(settings.home, key);
  });
  if (envBytes(metadata) + envBytesOf(configVars) > MAX_ENV_BYTES) {
    throw userError(`the metadata's env and the app's config vars take more than ${MAX_ENV_BYTES / 1024} KiB together; make them smaller`);
  }
  const choose = () => chooseInterpreter(config, metadata, current?.interpreter ?? null, request.interpreterVersion);
  // A version asked for with --interpreter / -o interpreter= is the request's, not the metadata's.
  const chosen = request.interpreterVersion === undefined ? inMetadata(source, choose) : choose();
  let fresh = Boolean(request.fresh) || current === null || request.interpreterVersion !== undefined;
  if (!fresh && chosen.mustBeFresh) {
    log.step(`Building a fresh package: ${chosen.mustBeFresh}`);
    fresh = true;
  }
  // Recorded with no await since `current` was read: retention keeps what a running build starts from.
  state.builds.update(buildId, { fresh, basePackage: fresh ? null : (current?.id ?? null) });
  const plan = makePlan(config, metadata, chosen.interpreter);
  const commit = await commitInfo(repo, revision);
  log.step(`Revision ${revision.slice(0, 12)}: ${commit.subject} (${commit.author})`);
  log.step(`Interpreter ${plan.interpreter.type} ${plan.interpreter.version}; ${fresh ? 'fresh package from the system image' : `based on package ${current?.id.slice(0, 12)}`}`);

  await mkdir(config.paths.workdir, { recursive: true });
  await ensureFreeSpace(config, [...storage.hostFolders, config.paths.state]);
  const tmp = await mkdtemp(join(config.paths.workdir, buildFolderPrefix(app, buildId)));
  // The jail (cgroup, volume, network) and the temp folder go whatever happens, the jail first.
  const cleanup = new Cleanup();
  let built: { stored: StoredObject; index: FrameIndex };
  try {
    const jail = await confine(config, tmp, cleanup);
    const root = join(jail.treeDir, 'root');
    await mkdir(root, { mode: 0o755 });
    const ctx: BuildContext = {
      ...services,
      log,
      app,
      settings,
      configVars,
      repo,
      revision,
      buildId,
      fresh,
      metadata,
      plan,
      current: fresh ? null : current,
      jail,
      root,
      os: null,
      signal: request.signal,
      stats,
      refreshed: new Set(),
      cleanup,
      cache: new TreeCache(config, state),
      base: null,
    };

    const { keeping, ...archived } = await withinLimits(ctx, async () => {
      await prepareBase(ctx); //           1. system image (or current package), system action
      if (fresh) await installInterpreter(ctx); // 2. interpreter
      await installAppPackages(ctx); //    3. app's OS packages
      await checkoutApp(ctx); //           4. clone or update
      await runSetupActions(ctx); //       5. files, before, main, after, finalize
      await failOnLimit(ctx); //           nothing is archived of a build that ran into a limit
      const keeping = prepareTree(ctx); // 7. (begun) the tree for the next build, copied beside the archive
      return { ...(await archivePackage(ctx)), keeping }; // 6. archive into storage
    });
    built = archived;
    // 7. the tree for the next build (claimed by this build until it ends); without it, that build unpacks the package.
    await keepTree(ctx, archived.stored.sha256, keeping).catch((error: unknown) => {
      if (!request.signal?.aborted) serverLog(`build ${buildId} of ${app}: the tree was not kept: ${(error as Error).message}`);
    });
  } finally {
    // A cleanup problem is the server's to fix (its log says what); it never replaces the build's outcome.
    await cleanup.close().catch((error: unknown) => serverLog(`build ${buildId} of ${app}: ${(error as Error).message}`));
    await removeTree(tmp).catch((error: unknown) => serverLog(`build ${buildId} of ${app}: ${(error as Error).message}`));
  }

  // Last, in one transaction: the package recorded and made current. Everything before it can fail (or the
  // server die) without changing what was there; after it come only the deploy and the build's own record.
  const { stored, index } = built;
  try {
    // A build cancelled (or over time) while its archive was stored or its tree kept changes nothing either.
    request.signal?.throwIfAborted();
    const changes = await changelog(repo, current?.revision ?? null, revision);
    const pkg: PackageRecord = {
      id: stored.sha256,
      app,
      // What the build started from: nothing for a fresh package.
      parent: fresh ? null : (current?.id ?? null),
      fresh,
      revision,
      author: commit.author,
      date: commit.date,
      description: commit.description,
      changelog: changes,
      interpreter: plan.interpreter,
      bytes: stored.bytes,
      storageKey: stored.key,
      compression: config.builder.compression,
      createdAt: new Date().toISOString(),
      metadata,
      buildId,
      current: true,
      file: true,
    };
    return { pkg, made: state.packages.addAsCurrent(pkg, request.requestedBy ?? null, JSON.stringify(index)) };
  } catch (error) {
    // The file goes unless a package of the app names it: a build identical to one it has wrote that one's file again.
    if (state.packages.get(app, stored.sha256)?.file !== true) await storage.delete(stored.key).catch(() => undefined);
    throw error;
  }
}

/** The build's jail in its temp folder, from builder.network and builder.limits; a failure is a system error. */
async function confine(config: Config, tmp: string, cleanup: Cleanup): Promise<Jail> {
  try {
    return await Jail.open(tmp, jailOptions(config, tmp), cleanup);
  } catch (error) {
    throw systemError(`cannot confine the build (builder.network, builder.limits): ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Refuses to start a build when less than builder.min_free GiB is free under
 * the workdir or a storage folder: a system error that names the folder (the
 * log shows it by its role) and what is free.
 */
async function ensureFreeSpace(config: Config, storageFolders: readonly string[]): Promise<void> {
  const wanted = config.builder.min_free;
  const [short] = await shortOfSpace([config.paths.workdir, ...storageFolders], wanted);
  if (short) {
    throw systemError(`only ${formatBytes(short.free)} is free under ${short.folder}, less than builder.min_free (${wanted} GiB); the build did not start`);
  }
}

/** Runs the build's steps; whatever failed after a limit was hit failed because of it, and says so. */
async function withinLimits<T>(ctx: BuildContext, steps: () => Promise<T>): Promise<T> {
  try {
    return await steps();
  } catch (error) {
    const hit = ctx.signal?.aborted ? null : await ctx.jail.limitHit();
    if (hit) throw userError(hit, { cause: error });
    throw error;
  }
}
