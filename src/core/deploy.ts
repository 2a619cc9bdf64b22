/**
 * Deploy commands (`apps.deploy.commands`, admin-written): run on the host
 * each time a package becomes current, by a build or a rollback, so that the
 * package reaches where the app runs. They run in private mount, PID, IPC and
 * UTS namespaces like the bootstrap commands, with `apps.deploy.network`, one
 * time limit for all of them (`apps.deploy.timelimit`) and their output as a
 * `-----> Deploying` step. They get the release in UPAAS_* variables, a
 * verified copy of the archive and the app's config vars in an env file, in a
 * 0700 folder that is removed afterwards. If one fails, the release is marked
 * failed and the package that was current before is made current again. The
 * deploys of one app run one after another, in the order of their releases.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { EXTENSION, compressionOf } from '../archive/tar.ts';
import { appSettings } from '../config/config.ts';
import { DEPLOY_DIR_PREFIX } from '../builder/sweep.ts';
import { emit } from '../events/events.ts';
import { Cleanup } from '../process/cleanup.ts';
import { type RunResult, SYSTEM_PATH, describeEnd } from '../process/run.ts';
import { serverLog } from '../process/server-log.ts';
import { type Confinement, Jail, UNCONFINED } from '../sandbox/jail.ts';
import { removeTree } from '../sandbox/mounts.ts';
import { runIsolatedOnHost } from '../sandbox/sandbox.ts';
import type { PackageRecord } from '../state/packages.ts';
import type { MadeCurrent } from '../state/releases.ts';
import { openArchive } from './download.ts';
import { CoreError } from './errors.ts';
import type { Services } from './services.ts';

/** Where a deploy's lines go: the build log (a build) or the caller (a rollback). */
export interface DeployOutput {
  step(text: string): void;
  output(text: string): void;
}

/** The deploy of a release failed; the package before it is current again. Its message is the caller's last line. */
export class DeployError extends CoreError {
  constructor(message: string) {
    super(message, 409);
    this.name = 'DeployError';
  }
}


type Needs = Pick<Services, 'config' | 'state' | 'storage' | 'events'>;

/**
 * Runs the app's deploy commands for a release just made (`made`, with the
 * package it made current); then tells the event sink release.created, or,
 * when one failed, release.failed, puts the package before back and throws a
 * DeployError. With no deploy commands the release stands as it is.
 */
export async function deployRelease(services: Needs, pkg: PackageRecord, made: MadeCurrent, out: DeployOutput, signal?: AbortSignal): Promise<void> {
  const { config, state } = services;
  const { release } = made;
  const deploy = appSettings(config, pkg.app).deploy;
  const facts = { package: { id: pkg.id, revision: pkg.revision, bytes: pkg.bytes } };
  if (deploy.commands.length === 0) {
    emit(services.events, { event: 'release.created', app: pkg.app, release: { version: release.version, kind: release.kind, by: release.by, status: 'ok' }, ...facts });
    return;
  }
  out.step(`Deploying release v${release.version} of ${pkg.app} (package ${pkg.id.slice(0, 12)})`);
  const failure = await oneAtATime(pkg.app, () => runDeploy(services, pkg, made, out, signal));
  if (failure === null) {
    emit(services.events, { event: 'release.created', app: pkg.app, release: { version: release.version, kind: release.kind, by: release.by, status: 'ok' }, ...facts });
    return;
  }
  const back = state.releases.fail(pkg.app, release.version, made.previous, failure);
  emit(services.events, {
    event: 'release.failed',
    app: pkg.app,
    release: { version: release.version, kind: release.kind, by: release.by, status: 'failed', failure },
    ...facts,
  });
  const now = !back
    ? 'another release has been made meanwhile'
    : made.previous
      ? `package ${made.previous.slice(0, 12)} is current again`
      : `${pkg.app} has no current package again`;
  throw new DeployError(`deploy failed: ${failure}; release v${release.version} is marked failed and ${now}`);
}

/** The deploys of each app, one after another in the order they were asked for (a rollback's and a build's may overlap). */
const deploying = new Map<string, Promise<unknown>>();

async function oneAtATime<T>(app: string, work: () => Promise<T>): Promise<T> {
  const before = deploying.get(app) ?? Promise.resolve();
  const mine = before.then(work, work);
  const settled = mine.catch(() => undefined);
  deploying.set(app, settled);
  try {
    return await mine;
  } finally {
    if (deploying.get(app) === settled) deploying.delete(app);
  }
}

/** Runs the commands; null when all succeeded, else why the first failure failed (one line). */
async function runDeploy(services: Needs, pkg: PackageRecord, made: MadeCurrent, out: DeployOutput, signal?: AbortSignal): Promise<string | null> {
  const { config, state } = services;
  const deploy = appSettings(config, pkg.app).deploy;
  await mkdir(config.paths.workdir, { recursive: true });
  const dir = await mkdtemp(join(config.paths.workdir, `${DEPLOY_DIR_PREFIX}${process.pid}-${pkg.app}-`));
  const cleanup = new Cleanup();
  try {
    const file = join(dir, `${pkg.id}.${EXTENSION[compressionOf(pkg.storageKey)]}`);
    try {
      const archive = await openArchive(services, pkg);
      await pipeline(archive.stream, createWriteStream(file, { mode: 0o600 }), { signal });
    } catch (error) {
      serverLog(`deploy of ${pkg.app} v${made.release.version}: ${(error as Error).message}`);
      return 'the package could not be copied for the deploy commands (the server log says why)';
    }
    const configFile = join(dir, 'config.env');
    await writeFile(configFile, envFileText(state.configVars.get(pkg.app)), { mode: 0o600 });
    const env: Record<string, string> = {
      PATH: SYSTEM_PATH,
      HOME: homedir(),
      ...deploy.env,
      UPAAS_APP: pkg.app,
      UPAAS_PACKAGE_ID: pkg.id,
      UPAAS_PACKAGE_FILE: file,
      UPAAS_REVISION: pkg.revision,
      UPAAS_RELEASE: String(made.release.version),
      UPAAS_RELEASE_KIND: made.release.kind,
      UPAAS_PREVIOUS_PACKAGE_ID: made.previous ?? '',
      UPAAS_CONFIG_FILE: configFile,
    };
    const jail = await deployConfinement(services, deploy.network, dir, cleanup);
    const deadline = Date.now() + deploy.timelimit * 1000;
    for (const [index, command] of deploy.commands.entries()) {
      const left = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
      const result: RunResult = await runIsolatedOnHost(['/bin/sh', '-c', command], { env, cwd: dir, jail, timeoutSeconds: left, signal, onLine: (line) => out.output(line) });
      if (result.ok) continue;
      const how = result.timedOut ? `was stopped: the deploy took longer than apps.deploy.timelimit (${deploy.timelimit} s)` : describeEnd(result);
      // Readers see the failure (releases, the build log): it names the command by its place, the
      // server log by its text (an admin's command may hold a host name or a token).
      serverLog(`deploy of ${pkg.app} v${made.release.version}: ${JSON.stringify(command)} ${how}`);
      return `deploy command ${index + 1} of ${deploy.commands.length} ${how}`;
    }
    return null;
  } finally {
    await cleanup.close().catch((error: unknown) => serverLog(`deploy of ${pkg.app}: ${(error as Error).message}`));
    await removeTree(dir).catch((error: unknown) => serverLog(`deploy of ${pkg.app}: ${(error as Error).message}`));
  }
}

/** apps.deploy.network: the host's own network, a loopback-only one, or the builds' isolated one. */
async function deployConfinement(services: Needs, network: 'host' | 'isolated' | 'none', dir: string, cleanup: Cleanup): Promise<Confinement> {
  if (network === 'host') return { ...UNCONFINED, network: 'host' };
  if (network === 'none') return UNCONFINED;
  const { config } = services;
  return Jail.open(
    dir,
    { network: 'isolated', blocked: config.builder.blocked, limits: { processes: 0, memory: 0, disk: 0 }, stateDir: config.paths.state, name: basename(dir) },
    cleanup,
  );
}

/**
 * The app's config vars as an env file: one `KEY=VALUE` a line, sorted, the
 * form systemd's `EnvironmentFile=` and `docker run --env-file` read. A plain
 * value (no quote, backslash, `$`, backquote or line break, no space at either
 * end) is written as it is, which both read back exactly. Any other is written
 * in double quotes, with `\` before each `"`, `\`, `$` and backquote and line
 * breaks kept, which systemd reads back exactly; docker takes such a line as
 * it stands (quotes included) and cannot hold a line break at all. The file is
 * not for a shell to source.
 */
export function envFileText(vars: Record<string, string>): string {
  return Object.keys(vars)
    .sort()
    .map((name) => {
      const value = vars[name] as string;
      if (plain(value)) return `${name}=${value}\n`;
      return `${name}="${value.replace(/["\\$`]/g, (c) => `\\${c}`)}"\n`;
    })
    .join('');
}

/** A value both readers take as it is: no quote, backslash, `$` or backquote, no line break, nothing to trim. */
const plain = (value: string): boolean => !/["'\\$`\r\n]/.test(value) && value.trim() === value;
