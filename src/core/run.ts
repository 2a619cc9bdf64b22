/**
 * `run`: one command in a throw-away copy of one of an app's packages, once
 * for every front end (the SSH and local command now, the HTTP API later).
 * The package is unpacked into a temp folder under paths.workdir, inside a
 * jail made like a build's (builder.network, builder.limits), and the command
 * runs there through the builder's sandbox with the environment the app's own
 * actions get, in apps.home. Nothing it changes is kept: the jail (cgroup,
 * volume, network) and the temp folder are undone by one cleanup stack and a
 * `finally`, whatever happens (a failed unpack, commands.timelimit, the
 * caller going away); the package and its stored file are only read.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { unpackTree } from '../archive/tar.ts';
import { shortOfSpace } from '../builder/free-space.ts';
import { RUN_DIR_PREFIX } from '../builder/sweep.ts';
import { formatBytes, hidePaths, serverFolders } from '../builder/log.ts';
import { commandEnv, jailOptions } from '../builder/context.ts';
import { makePlan } from '../builder/plan.ts';
import { type AppSettings, type Config, appSettings } from '../config/config.ts';
import { ValidationError, validate } from '../config/schema.ts';
import { metadataSchema } from '../metadata/metadata.ts';
import { Cleanup } from '../process/cleanup.ts';
import { runChecked } from '../process/run.ts';
import { serverLog } from '../process/server-log.ts';
import { Jail } from '../sandbox/jail.ts';
import { removeTree } from '../sandbox/mounts.ts';
import { BIND_ROOT, runInSandbox } from '../sandbox/sandbox.ts';
import type { PackageRecord } from '../state/packages.ts';
import { openArchive, packageToDownload } from './download.ts';
import { CoreError } from './errors.ts';
import type { Services } from './services.ts';

/** A platform problem (the jail, the stored file, the unpack): a system error whose message names no server path; its cause has the detail. */
export class RunError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RunError';
  }
}

export interface RunRequest {
  app: string;
  /** A package id or unique prefix (findPackage); default: the app's current package. */
  package?: string;
  /** The command and its arguments, run as they are (no shell). */
  argv: readonly string[];
  /**
   * Takes the command's standard output as raw bytes, as fast as the caller
   * reads them (the command waits meanwhile: a kernel pipe, nothing held
   * here); resolves once it has taken all of it.
   */
  stdout: (data: Readable) => Promise<void>;
  /** The same for the command's standard error. */
  stderr: (data: Readable) => Promise<void>;
  /** Each line the sandbox itself says (it could not start the command, ...): a few lines at most. */
  sandboxLine: (line: string) => void;
  /** Aborting (the caller went away) stops the unpack or the command; everything is undone all the same. */
  signal?: AbortSignal;
}

/** How the command ended. */
export interface RunOutcome {
  package: PackageRecord;
  /** Its exit status; null when it was killed (`signal`), stopped by the time limit or cancelled. */
  exitCode: number | null;
  signal: string | null;
  /** commands.timelimit, in seconds, when the command ran into it and was stopped. */
  timedOut: number | null;
  cancelled: boolean;
  /** The limit of builder.limits it ran into (one line), or null. */
  limit: string | null;
}

/** Where the command's standard output and error pass the chroot: FIFOs in a folder bound read-only at BIND_ROOT. */
const OUTPUT_IN_CHROOT = `${BIND_ROOT}/output`;

/**
 * Redirects standard output and error into the FIFOs and execs the command
 * words, which come as arguments: constant text, the shell only opens the
 * files, no word is interpreted (exec runs a program, never a builtin or a
 * function). The shell's own complaint (no such program) goes to the FIFO too.
 */
const WRAPPER = `exec "$@" > ${OUTPUT_IN_CHROOT}/stdout 2> ${OUTPUT_IN_CHROOT}/stderr`;


/**
 * Runs `request.argv` in a throw-away copy of the app's package. Refusals
 * (no such package, its file deleted) are CoreErrors, platform problems
 * RunErrors; how the command ended is the outcome, whatever it was.
 */
export async function runInPackage(services: Pick<Services, 'config' | 'state' | 'storage'>, request: RunRequest): Promise<RunOutcome> {
  const { workers } = services.config.builder;
  // Each run takes a jail's share of the disk, memory and processes, like a build: as many at once as builds.
  if (runsNow >= workers) {
    throw new CoreError(`${runsNow} one-off commands are running, as many as builder.workers (${workers}) allows at once; try again when one ends`, 409);
  }
  runsNow += 1;
  try {
    return await runCounted(services, request);
  } finally {
    runsNow -= 1;
  }
}

/** Runs in this process now (runInPackage bounds them). */
let runsNow = 0;

async function runCounted(services: Pick<Services, 'config' | 'state' | 'storage'>, request: RunRequest): Promise<RunOutcome> {
  const { config, state } = services;
  const { app, signal } = request;
  const pkg = packageToDownload(services, app, request.package);
  const settings = appSettings(config, app);
  const env = runEnv(config, settings, pkg, state.configVars.get(app));
  await mkdir(config.paths.workdir, { recursive: true });
  const [short] = await shortOfSpace([config.paths.workdir], config.builder.min_free);
  if (short) throw new RunError(`only ${formatBytes(short.free)} is free under the workdir, less than builder.min_free (${config.builder.min_free} GiB)`);
  const tmp = await mkdtemp(join(config.paths.workdir, `${RUN_DIR_PREFIX}${process.pid}-${app}.`));
  const cleanup = new Cleanup();
  // The consumer of the output may still be sending its last bytes when the jail is gone: awaited after it.
  let delivered: Promise<void> = Promise.resolve();
  let outcome: RunOutcome;
  try {
    const jail = await confine(config, tmp, cleanup);
    const root = join(jail.treeDir, 'root');
    await mkdir(root, { mode: 0o755 });
    // A remote caller learns no server path: they are shown by their role (<workdir>, <storage>, ...).
    await unpackPackage(services, pkg, root, jail, serverFolders(config.paths, services.storage.hostFolders), signal);
    const output = await outputPipes(join(tmp, 'output'), cleanup);
    delivered = Promise.all([request.stdout(output.stdout).catch(() => undefined), request.stderr(output.stderr).catch(() => undefined)]).then(() => undefined);
    const limit = config.commands.timelimit;
    const result = await runInSandbox(root, ['/bin/sh', '-c', WRAPPER, 'upaas-run', ...request.argv], {
      env,
      cwd: settings.home,
      jail,
      bindsReadOnly: [{ source: output.dir, target: OUTPUT_IN_CHROOT }],
      timeoutSeconds: limit,
      signal,
      onLine: request.sandboxLine,
    });
    // Every writer but ours died with the command's PID namespace: the reader sees the end once it has read the rest.
    output.closeWriteEnds();
    // With an error: a consumer then settles however it waits (an 'error', or pipeline's premature close).
    if (result.aborted) for (const stream of [output.stdout, output.stderr]) stream.destroy(new Error('the run was cancelled'));
    if (result.startError) throw new RunError(`the sandbox could not be started (${result.startError})`);
    const hit = result.aborted ? null : await jail.limitHit();
    outcome = {
      package: pkg,
      exitCode: result.timedOut || result.aborted || result.signal ? null : (result.exitCode ?? null),
      signal: result.timedOut || result.aborted ? null : (result.signal ?? null),
      timedOut: result.timedOut ? limit : null,
      cancelled: result.aborted,
      // jail.ts words its limits for builds; here the command ran into them.
      limit: hit?.replace(/^the build\b/, 'the command') ?? null,
    };
  } finally {
    // A cleanup problem is the server's to fix (its log says what); it never replaces how the run ended.
    await cleanup.close().catch((error: unknown) => serverLog(`run in ${app}: ${(error as Error).message}`));
    await removeTree(tmp).catch((error: unknown) => serverLog(`run in ${app}: ${(error as Error).message}`));
  }
  await delivered;
  return outcome;
}

/**
 * The environment of the command: what the app's own actions see in a build
 * (builder/context.ts actionEnv) of this package: the admin's env merged with
 * the package's metadata env (plan.ts precedence), the app's config vars over
 * them, HOME = apps.home and the UPAAS_* names that describe the package.
 * UPAAS_FRESH_PACKAGE is a build's and is left out; UPAAS_PACKAGE_ID is added.
 */
export function runEnv(config: Config, settings: AppSettings, pkg: PackageRecord, configVars: Record<string, string>): Record<string, string> {
  let metadata;
  try {
    metadata = validate(metadataSchema, pkg.metadata, `the recorded metadata of package ${pkg.id.slice(0, 12)}`);
  } catch (error) {
    if (error instanceof ValidationError) throw new RunError(`${error.message}; rebuilding the app records it again`, { cause: error });
    throw error;
  }
  const plan = makePlan(config, metadata, pkg.interpreter);
  // What the app's own actions see in a build of this package (no fresh build: nothing is built).
  return {
    ...commandEnv({ plan, configVars, settings, app: pkg.app, revision: pkg.revision, fresh: false }, 'app'),
    UPAAS_PACKAGE_ID: pkg.id,
  };
}

/** The run's jail in its temp folder, made as a build's is (builder.ts confine); a failure is a RunError. */
async function confine(config: Config, tmp: string, cleanup: Cleanup): Promise<Jail> {
  try {
    return await Jail.open(tmp, jailOptions(config, tmp), cleanup);
  } catch (error) {
    const why = hidePaths((error as Error).message, serverFolders(config.paths, []));
    throw new RunError(`cannot confine the command (builder.network, builder.limits): ${why}`, { cause: error });
  }
}

/**
 * Unpacks the package's stored file into `root`, as a build unpacks the
 * current package (steps/image.ts), its bytes checked against the package id
 * on the way (openArchive), tar and zstd in the jail's cgroup.
 */
async function unpackPackage(
  services: Pick<Services, 'storage'>,
  pkg: PackageRecord,
  root: string,
  jail: Jail,
  hidden: readonly (readonly [path: string, name: string])[],
  signal: AbortSignal | undefined,
): Promise<void> {
  try {
    const archive = await openArchive(services, pkg);
    await unpackTree(archive.stream, root, pkg.compression, signal, jail.cgroupProcs);
  } catch (error) {
    if (signal?.aborted) throw new CoreError('the run was cancelled before the command started');
    const hit = await jail.limitHit();
    const why = hit ? hit.replace(/^the build\b/, 'the unpacked package') : hidePaths((error as Error).message, hidden);
    throw new RunError(`cannot unpack package ${pkg.id.slice(0, 12)} of ${pkg.app}: ${why}`, { cause: error });
  }
}

/** The command's two output streams, read here from FIFOs in `dir` (bound into the chroot). */
interface OutputPipes {
  dir: string;
  stdout: Socket;
  stderr: Socket;
  /** Lets the end through to the readers once the command is gone. */
  closeWriteEnds: () => void;
}

/**
 * The FIFOs the command's standard output and error go to, and their read
 * ends here as streams. The sandbox keeps only stdio open and its runner
 * turns output into lines, so the command's bytes take ways of their own:
 * unchanged, and with the pipes' flow control (a flood waits for the caller
 * instead of filling the server's memory line by line).
 */
async function outputPipes(dir: string, cleanup: Cleanup): Promise<OutputPipes> {
  await mkdir(dir, { mode: 0o700 });
  const stdout = await fifo(join(dir, 'stdout'), cleanup);
  const stderr = await fifo(join(dir, 'stderr'), cleanup);
  return {
    dir,
    stdout: stdout.stream,
    stderr: stderr.stream,
    closeWriteEnds: () => {
      stdout.closeWriteEnd();
      stderr.closeWriteEnd();
    },
  };
}

/**
 * One FIFO at `path` and its read end as a stream. This side also holds a
 * write end, so the reader sees no end before the command has opened the
 * FIFO; `closeWriteEnd` (also on cleanup) lets the end through.
 */
async function fifo(path: string, cleanup: Cleanup): Promise<{ stream: Socket; closeWriteEnd: () => void }> {
  await runChecked('cannot make the output pipe', 'mkfifo', ['-m', '0600', '--', path]);
  // Non-blocking opens: the read end first (a write end needs a reader), both at once, before anything reads.
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  let writeFd: number | null = null;
  let stream: Socket;
  try {
    writeFd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    stream = new Socket({ fd: readFd, readable: true, writable: false });
  } catch (error) {
    closeSync(readFd);
    if (writeFd !== null) closeSync(writeFd);
    throw error;
  }
  const closeWriteEnd = () => {
    if (writeFd === null) return;
    closeSync(writeFd);
    writeFd = null;
  };
  cleanup.defer('an output pipe', closeWriteEnd);
  return { stream, closeWriteEnd };
}
