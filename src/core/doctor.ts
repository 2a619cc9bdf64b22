/**
 * The doctor: is this server healthy? It checks the config file, the Debian
 * programs the builder runs, the state database, builds marked running whose
 * process is gone, every package record against its stored file (present,
 * size, with `deep` its SHA-256), files in storage that no record names,
 * what interrupted builds left (temp folders, mounts, cgroups), whether
 * builds can stand on the tree cache (an overlay probe) and the free disk. It changes nothing unless asked to fix; then it marks stale builds
 * failed, removes what interrupted builds left and the files no record names,
 * and says what it did. Messages name server folders by their role only.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { formatBytes, hidePaths, serverFolders } from '../builder/log.ts';
import { IMAGES, imageKey } from '../builder/steps/image.ts';
import { shortOfSpace } from '../builder/free-space.ts';
import { findLeftovers, sweepInterrupted } from '../builder/sweep.ts';
import { TreeCache } from '../builder/tree-cache.ts';
import { loadConfig } from '../config/config.ts';
import { ValidationError } from '../config/schema.ts';
import { YamlError } from '../config/yaml.ts';
import { listRepos } from '../git/repos.ts';
import { Cleanup } from '../process/cleanup.ts';
import { SYSTEM_PATH } from '../process/run.ts';
import { removeTree } from '../sandbox/mounts.ts';
import { mountOverlay } from '../sandbox/overlay.ts';
import type { StoredEntry } from '../storage/handler.ts';
import type { Services } from './services.ts';

export type ProblemKind =
  | 'config'
  | 'missing-program'
  | 'state-integrity'
  | 'stale-build'
  | 'missing-file'
  | 'size-mismatch'
  | 'hash-mismatch'
  | 'stray-file'
  | 'leftover-workdir'
  | 'leftover-mount'
  | 'leftover-cgroup'
  | 'leftover-tree'
  | 'tree-cache'
  | 'low-disk';

export interface Problem {
  check: string;
  kind: ProblemKind;
  message: string;
}

export interface DoctorReport {
  healthy: boolean;
  /** Every check that ran, and whether it found nothing wrong. */
  checks: { name: string; ok: boolean }[];
  /** What is wrong (after the fixes, when fixing). */
  problems: Problem[];
  /** What `fix` did. */
  fixed: string[];
  /** The tree cache: what it holds, and builder.cache (at most `limits.trees` trees and `limits.size` GiB, trees `limits.layers` layers deep). */
  cache: { trees: number; layers: number; bytes: number; limits: { trees: number; size: number; layers: number } };
}

export interface DoctorOptions {
  /** Also hash every stored package (reads all of them). */
  deep?: boolean;
  /** Mend what can be mended: stale builds, leftovers of interrupted builds, files no record names. */
  fix?: boolean;
  /** The caller is on the server (the local admin): messages may quote the config file. */
  local?: boolean;
}

type Needs = Pick<Services, 'config' | 'state' | 'storage'>;

interface Check {
  name: string;
  run: (services: Needs, options: DoctorOptions) => Promise<Problem[]>;
  /** Mends what `run` found; returns one line per thing it did. */
  fix?: (services: Needs, problems: Problem[]) => Promise<string[]>;
}

/** Runs every check (and with `fix`, mends and checks again); the report says what was found and done. */
export async function runDoctor(services: Needs, options: DoctorOptions = {}): Promise<DoctorReport> {
  const hidden = serverFolders(services.config.paths, services.storage.hostFolders);
  const shown = (text: string) => hidePaths(text, hidden);
  const checks: DoctorReport['checks'] = [];
  const problems: Problem[] = [];
  const fixed: string[] = [];
  for (const check of CHECKS) {
    let found = await check.run(services, options);
    if (options.fix && check.fix && found.length > 0) {
      fixed.push(...(await check.fix(services, found)).map(shown));
      found = await check.run(services, options);
    }
    checks.push({ name: check.name, ok: found.length === 0 });
    problems.push(...found.map((problem) => ({ ...problem, message: shown(problem.message) })));
  }
  const cache = { ...new TreeCache(services.config, services.state).usage(), limits: services.config.builder.cache };
  return { healthy: problems.length === 0, checks, problems, fixed, cache };
}

/**
 * The config file still loads (an edit since the server started would stop
 * its next start). A remote admin is told where, not what: the file's text
 * (YAML's excerpt, a refused value) may hold secrets, and included files are
 * server paths.
 */
async function checkConfig({ config }: Needs, options: DoctorOptions): Promise<Problem[]> {
  if (config.file === null) return [];
  try {
    loadConfig(config.file);
    return [];
  } catch (error) {
    const problem = (message: string): Problem[] => [{ check: 'config', kind: 'config', message: `the config file does not load: ${message}` }];
    if (options.local) return problem((error as Error).message.replaceAll(config.file, '<config>'));
    if (error instanceof ValidationError) {
      return problem(`${error.problems.length} invalid setting(s): ${error.problems.map((line) => line.split(':')[0]).join(', ')} (check-config on the server tells more)`);
    }
    const [first = ''] = (error as Error).message.split('\n');
    const reason = error instanceof YamlError ? first.slice(error.source.length + 2) : 'it cannot be read';
    return problem(`${reason.replace(/\/\S+/g, '<path>')} (check-config on the server tells more)`);
  }
}

/** The Debian programs the builder and the sandbox run, for this config. */
function programsFor(config: Needs['config']): string[] {
  const programs = ['git', 'tar', 'zstd', 'gzip', 'bash', 'perl', 'setpriv', 'nsenter', 'unshare', 'mount', 'umount', 'losetup', 'fallocate', 'mkfs.ext4', 'mkfifo', 'ip'];
  if (config.builder.network === 'isolated') programs.push('nft', 'slirp4netns');
  if (config.bootstrap.commands.some((command) => /\bdebootstrap\b/.test(command))) programs.push('debootstrap');
  return programs;
}

async function checkPrograms({ config }: Needs): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const program of programsFor(config)) {
    const found = await Promise.any(SYSTEM_PATH.split(':').map((dir) => access(join(dir, program), constants.X_OK))).then(
      () => true,
      () => false,
    );
    if (!found) problems.push({ check: 'programs', kind: 'missing-program', message: `${program} is not installed (scripts/system-deps.sh installs what is missing)` });
  }
  return problems;
}

async function checkState({ state }: Needs): Promise<Problem[]> {
  const rows = state.db.pragma('integrity_check') as { integrity_check: string }[];
  const lines = rows.map((row) => row.integrity_check).filter((line) => line !== 'ok');
  return lines.map((line) => ({ check: 'state', kind: 'state-integrity', message: `the state database is damaged: ${line}` }));
}

async function checkBuilds({ state }: Needs): Promise<Problem[]> {
  return state.builds.stale().map((build) => ({
    check: 'builds',
    kind: 'stale-build',
    message: `build ${build.id} of ${build.app} is marked running, but its process is gone`,
  }));
}

/** What interrupted builds left: temp folders, mounts below them, cgroups. Fixed by the same sweep as a server start. */
async function checkLeftovers({ config, state }: Needs): Promise<Problem[]> {
  const { workdirs, cgroups, others } = await findLeftovers(config, () => state.builds.liveIds());
  return [
    ...others.flatMap(({ what, dir, mounts, cgroupDirs }) => [
      ...(dir ? [{ check: 'leftovers', kind: 'leftover-workdir' as const, message: `${dir} was left by a ${what} that no longer runs` }] : []),
      ...mounts.map((point) => ({ check: 'leftovers', kind: 'leftover-mount' as const, message: `${point} is still mounted, left by a ${what}` })),
      ...(cgroupDirs.length > 0 ? [{ check: 'leftovers', kind: 'leftover-cgroup' as const, message: `the cgroup of a ${what} that no longer runs is left: ${cgroupDirs.join(', ')}` }] : []),
    ]),
    ...workdirs.flatMap(({ id, dir, mounts }) => [
      { check: 'leftovers', kind: 'leftover-workdir' as const, message: `${dir} was left by build ${id}, which no longer runs` },
      ...mounts.map((point) => ({ check: 'leftovers', kind: 'leftover-mount' as const, message: `${point} is still mounted, left by build ${id}` })),
    ]),
    ...cgroups.map(({ id, dirs }) => ({ check: 'leftovers', kind: 'leftover-cgroup' as const, message: `the cgroup of build ${id} is left: ${dirs.join(', ')}` })),
    ...(await new TreeCache(config, state).leftovers(() => state.builds.liveIds())).map((dir) => ({
      check: 'leftovers',
      kind: 'leftover-tree' as const,
      message: `${dir} is a tree cache layer left half made or half removed`,
    })),
  ];
}

/** Every package record whose file should be there: present, of its size, and (deep) of its hash. */
async function checkPackages({ state, storage }: Needs, options: DoctorOptions): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const pkg of state.packages.all().filter((p) => p.file)) {
    const what = `package ${pkg.id.slice(0, 12)} of ${pkg.app}${pkg.current ? ' (its current package)' : ''}`;
    const stored = await storage.stat(pkg.storageKey);
    if (!stored) {
      problems.push({ check: 'packages', kind: 'missing-file', message: `${what}: its file ${pkg.storageKey} is missing` });
      continue;
    }
    if (stored.bytes !== pkg.bytes) {
      problems.push({ check: 'packages', kind: 'size-mismatch', message: `${what}: its file has ${stored.bytes} bytes, the record says ${pkg.bytes}` });
      continue;
    }
    if (options.deep) {
      const actual = await sha256Of(storage, pkg.storageKey).catch((error: unknown) => `unreadable (${(error as Error).message})`);
      if (actual !== pkg.id) problems.push({ check: 'packages', kind: 'hash-mismatch', message: `${what}: its file's SHA-256 is ${actual}` });
    }
  }
  return problems;
}

/** The SHA-256 of a stored object, read whole. */
async function sha256Of(storage: Needs['storage'], key: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(await storage.get(key), async function* (chunks: AsyncIterable<Buffer>) {
    for await (const chunk of chunks) hash.update(chunk);
  });
  return hash.digest('hex');
}

/** The storage keys the records name: packages whose file is kept, this server's images, the current config's image, images live builds use. */
function namedKeys({ config, state }: Needs): Set<string> {
  const keys = new Set(state.packages.all().filter((p) => p.file).map((p) => p.storageKey));
  for (const image of state.images.list()) keys.add(image.key);
  keys.add(imageKey(config));
  for (const key of state.builds.liveBases().images) keys.add(key);
  return keys;
}

/**
 * How old a stray object must be before --fix removes it: a build stores its
 * package a moment before it records it, and a local write renames its two
 * files one after the other.
 */
const STRAY_GRACE_MS = 10 * 60 * 1000;

/** The stray objects --fix may remove: old enough, and under a prefix that is this server's (an app it knows with no live build, its images). */
function removable(entry: StoredEntry, owned: { apps: ReadonlySet<string>; building: ReadonlySet<string> }): boolean {
  if (Date.now() - entry.modifiedAt.getTime() < STRAY_GRACE_MS) return false;
  const [top, app] = entry.key.split('/');
  return top === IMAGES || (top === 'packages' && app !== undefined && owned.apps.has(app) && !owned.building.has(app));
}

/** The apps this server has (repos in paths.repos, records in the state) and those building now; reads only. */
async function ownedApps({ config, state }: Needs): Promise<{ apps: Set<string>; building: Set<string> }> {
  return { apps: new Set([...(await listRepos(config.paths.repos)), ...state.apps.names()]), building: state.builds.liveApps() };
}

/** The storage entries no record names, each with whether --fix may remove it. */
async function strays(services: Needs): Promise<{ entry: StoredEntry; removable: boolean }[]> {
  const named = namedKeys(services);
  const owned = await ownedApps(services);
  return (await services.storage.inventory()).filter((entry) => !named.has(entry.key)).map((entry) => ({ entry, removable: removable(entry, owned) }));
}

async function checkStorage(services: Needs): Promise<Problem[]> {
  return (await strays(services)).map(({ entry, removable: mayGo }) => ({
    check: 'storage',
    kind: 'stray-file' as const,
    message: `${entry.key} (${formatBytes(entry.bytes)}${entry.complete ? '' : ', incomplete'}) is in storage, but no record names it${
      mayGo ? '' : ' (--fix leaves it: it is new, or not under an app or the images of this server)'
    }`,
  }));
}

/** Removes the stray files this server owns. */
async function fixStorage(services: Needs): Promise<string[]> {
  const done: string[] = [];
  for (const { entry } of (await strays(services)).filter((stray) => stray.removable)) {
    await services.storage.delete(entry.key);
    done.push(`removed ${entry.key} from storage (no record named it)`);
  }
  return done;
}

async function fixLeftovers(services: Needs): Promise<string[]> {
  const done: string[] = [];
  await sweepInterrupted(services.config, services.state, (line) => done.push(line.replace(/^upaas: /, '')));
  return done;
}

async function checkDisk({ config, storage }: Needs): Promise<Problem[]> {
  const wanted = config.builder.min_free;
  return (await shortOfSpace([config.paths.workdir, config.paths.state, ...storage.hostFolders], wanted)).map(({ folder, free }) => ({
    check: 'disk',
    kind: 'low-disk' as const,
    message: `only ${formatBytes(free)} is free under ${folder}, less than builder.min_free (${wanted} GiB): builds will not start`,
  }));
}

/**
 * Whether builds can stand on the tree cache here: an overlay like a build's
 * root (index=on) over a layer in the cache's folder, mounted and unmounted
 * in a probe folder that is removed again. Where it cannot, every build
 * unpacks its base after all.
 */
async function checkTreeCache({ config, state }: Needs): Promise<Problem[]> {
  const cache = new TreeCache(config, state);
  if (!cache.enabled) return [];
  await mkdir(cache.folder, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(cache.folder, `_probe-${process.pid}-`));
  const cleanup = new Cleanup();
  try {
    for (const folder of ['lower', 'overlay', 'root']) await mkdir(join(dir, folder));
    await mountOverlay(join(dir, 'overlay'), [join(dir, 'lower')], join(dir, 'root'), cleanup);
    return [];
  } catch (error) {
    const message = `builds cannot stand on the tree cache here, so each one unpacks its base (builder.cache.trees: 0 says so): ${(error as Error).message}`;
    return [{ check: 'tree cache', kind: 'tree-cache', message }];
  } finally {
    await cleanup.close();
    await removeTree(dir);
  }
}

const CHECKS: Check[] = [
  { name: 'config', run: checkConfig },
  { name: 'programs', run: checkPrograms },
  { name: 'state', run: checkState },
  { name: 'builds', run: checkBuilds, fix: fixLeftovers },
  { name: 'leftovers', run: checkLeftovers, fix: fixLeftovers },
  { name: 'packages', run: checkPackages },
  { name: 'storage', run: checkStorage, fix: fixStorage },
  { name: 'tree cache', run: checkTreeCache },
  { name: 'disk', run: checkDisk },
];
