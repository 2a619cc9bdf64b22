/**
 * What the benchmarks share: the real image's storage, medians, a child
 * process timed end to end with the arrival time of each of its "-----> "
 * step lines (where a build's time goes), the `tar | zstd` baseline of a
 * package's tree, and what the tree cache takes on disk and in the page cache.
 */
import { copyFileSync, cpSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { State } from '../src/state/state.ts';
import { dirname, join } from 'node:path';
import { type Options, execa } from 'execa';
import { imageKey } from '../src/builder/steps/image.ts';
import { parseConfig } from '../src/config/config.ts';
import { loadYamlFile } from '../src/config/yaml.ts';
import { PROJECT, World, merge } from '../test/helpers/world.ts';

export const BIN = join(PROJECT, 'bin/upaas.js');
/** The real debootstrap image, shared with the real tests (test/real.test.ts), which keep only it there. */
export const IMAGE_STORAGE = join(PROJECT, 'test/.cache/real-storage');
/** The example app every real-image figure builds. */
export const EXAMPLE_APP = join(PROJECT, 'examples/hello');

export const median = (values: number[]): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
export const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
export const ratio = (a: number, b: number): string => (a / b).toFixed(2);

/** One line of a report: label padded, then the value. */
export function row(label: string, value: string, width = 60): void {
  console.log(`${label.padEnd(width)} ${value}`);
}

export interface Stamp {
  /** Milliseconds since the process started. */
  at: number;
  text: string;
}

export interface TimedRun {
  ms: number;
  exitCode: number;
  output: string;
  /** Every "-----> " line (a build step, a push's remote line), with when it arrived. */
  steps: Stamp[];
}

/** A folder watched during a run: the first new entry in it shows in the steps as `label`. */
export interface Watch {
  dir: string;
  label: string;
}

const listing = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

/**
 * Runs a program (argument array) to its end and times it; its output
 * (stdout and stderr together) is split into lines as it comes, and each step
 * line is stamped with its arrival. Each watched folder is listed every 10 ms:
 * when a new entry appears (a package file stored, a tree layer begun), a
 * step `(label)` is stamped; what happens between two step lines shows so.
 */
export async function timedRun(file: string, args: string[], options: Options = {}, watches: Watch[] = []): Promise<TimedRun> {
  const steps: Stamp[] = [];
  let partial = '';
  const pending = watches.map((watch) => ({ ...watch, before: new Set(listing(watch.dir)) }));
  const started = performance.now();
  const poll = setInterval(() => {
    for (const watch of [...pending]) {
      if (listing(watch.dir).some((entry) => !watch.before.has(entry))) {
        steps.push({ at: performance.now() - started, text: `(${watch.label})` });
        pending.splice(pending.indexOf(watch), 1);
      }
    }
  }, 10);
  const child = execa(file, args, { ...options, all: true, reject: false });
  child.all?.on('data', (chunk: Buffer) => {
    const at = performance.now() - started;
    const parts = (partial + String(chunk)).split(/\r?\n|\r/);
    partial = parts.pop() ?? '';
    for (const line of parts) {
      const step = line.indexOf('-----> ');
      if (step >= 0) steps.push({ at, text: line.slice(step + 7) });
    }
  });
  const result = await child.finally(() => clearInterval(poll));
  const ms = performance.now() - started;
  steps.sort((a, b) => a.at - b.at);
  if (partial.includes('-----> ')) steps.push({ at: ms, text: partial.slice(partial.indexOf('-----> ') + 7) });
  return { ms, exitCode: result.exitCode ?? -1, output: String(result.all ?? ''), steps };
}

/** Throws with the end of the output unless the run exited 0 (and said `expect`, when given). */
export function check(run: TimedRun, what: string, expect?: string): TimedRun {
  if (run.exitCode !== 0 || (expect !== undefined && !run.output.includes(expect))) {
    throw new Error(`${what} failed (exit ${run.exitCode}):\n${run.output.split('\n').slice(-40).join('\n')}`);
  }
  return run;
}

/** The run with the median time (the upper one of an even count, like median()). */
export function medianRun<T extends { ms: number }>(runs: T[]): T {
  const sorted = [...runs].sort((a, b) => a.ms - b.ms);
  return sorted[Math.floor(sorted.length / 2)] as T;
}

/**
 * Where a run's time went: from its start to the first step line, each step
 * line to the next one, and the last one to the end. Digits and ids are kept
 * (they say which build), the text cut to fit the label.
 */
export function printTimeline(run: TimedRun, startLabel: string, indent = '    '): void {
  const width = 56 - indent.length;
  const cut = (text: string) => (text.length > width ? `${text.slice(0, width - 1)}…` : text);
  let previous = 0;
  let label = startLabel;
  for (const step of run.steps) {
    row(`${indent}${cut(label)}`, `${((step.at - previous) / 1000).toFixed(2)} s`);
    previous = step.at;
    label = step.text;
  }
  row(`${indent}${cut(`${label} -> exit`)}`, `${((run.ms - previous) / 1000).toFixed(2)} s`);
}

/** Unpacks a package archive (zstd) like the builder does, as root with owners and xattrs. */
export async function unpackPackage(file: string, target: string): Promise<void> {
  await execa('mkdir', ['-p', target]);
  await execa('tar', ['--extract', '--zstd', '--numeric-owner', '--same-owner', '--preserve-permissions', '--xattrs', '--xattrs-include=*', '--acls', '--file', file, '--directory', target]);
}

/**
 * The baseline of a build's archive: `tar -c -C TREE . | zstd -T0 -3 > /dev/null`,
 * run twice (the first warms the page cache), the second timed; milliseconds.
 * `asBuilder`: with the builder's tar flags (archive/tar.ts: sparse files,
 * xattrs, ACLs, numeric owners, one file system) and the stream hashed
 * (`sha256sum`), which is what its archive step does besides storing the file.
 */
export async function tarZstd(tree: string, asBuilder = false): Promise<number> {
  const script = asBuilder
    ? 'tar --create --file=- --sparse --one-file-system --numeric-owner --xattrs --xattrs-include=* --acls --directory "$1" . | zstd -q -T0 -3 | sha256sum > /dev/null'
    : 'tar -c -f - -C "$1" . | zstd -q -T0 -3 > /dev/null';
  const once = async () => {
    const started = performance.now();
    await execa('bash', ['-o', 'pipefail', '-c', script, 'bash', tree]);
    return performance.now() - started;
  };
  await once();
  return once();
}

/** Bytes a folder takes on disk (`du -s -B1`); 0 when it is not there. */
export async function diskUse(dir: string): Promise<number> {
  if (!existsSync(dir)) return 0;
  const { stdout } = await execa('du', ['-s', '-B1', dir]);
  return Number(String(stdout).split('\t')[0]);
}

/** Bytes of the folder's files held in the page cache (fincore), or null without fincore. */
export async function pageCache(dir: string): Promise<number | null> {
  if (!existsSync(dir)) return 0;
  const which = await execa('sh', ['-c', 'command -v fincore'], { reject: false });
  if (which.exitCode !== 0) return null;
  const result = await execa('sh', ['-c', 'find "$1" -type f -print0 | xargs -0 -r fincore --bytes --noheadings --output RES', 'sh', dir], { reject: false });
  return String(result.stdout)
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((value) => Number.isFinite(value))
    .reduce((sum, value) => sum + value, 0);
}

export interface CacheFigures {
  /** du -s -B1 of STATE/trees. */
  disk: number;
  /** What `doctor --json` says the cache holds. */
  trees: number;
  layers: number;
  recorded: number;
  /** Page cache the cache's files occupy (reclaimable), null without fincore. */
  resident: number | null;
}

/** The tree cache of a world (its config at `configFile`): on disk, in the state's rows, in the page cache. */
export async function cacheFigures(world: World, configFile = world.configFile): Promise<CacheFigures> {
  const trees = join(world.dir, 'state/trees');
  const doctor = await execa('node', [BIN, '-c', configFile, 'doctor', '--json'], { cwd: world.dir, reject: false });
  let cache = { trees: Number.NaN, layers: Number.NaN, bytes: Number.NaN };
  try {
    cache = (JSON.parse(String(doctor.stdout)) as { cache: typeof cache }).cache;
  } catch {
    // reported as NaN: doctor printed no JSON
  }
  return { disk: await diskUse(trees), trees: cache.trees, layers: cache.layers, recorded: cache.bytes, resident: await pageCache(trees) };
}

/** Prints a world's cache figures under `title`. */
export function printCache(title: string, figures: CacheFigures): void {
  console.log(title);
  row('  disk: du -s -B1 STATE/trees', `${mib(figures.disk)} (${figures.disk} bytes)`);
  row('  doctor --json cache: trees / layers / bytes recorded', `${figures.trees} / ${figures.layers} / ${mib(figures.recorded)}`);
  const resident = figures.resident === null ? 'not measured (no fincore)' : `${mib(figures.resident)} (reclaimable, fincore)`;
  row('  page cache held by its files', resident);
  row('  RAM reserved by the cache', 'none: a folder on disk, read through overlayfs');
}

/** The shipped upaas.yml without its paths: a world's folders are its own (storage: <state>/storage). */
export function shippedConfig(): Record<string, unknown> {
  const { paths: _paths, ...rest } = loadYamlFile(join(PROJECT, 'upaas.yml')) as Record<string, unknown>;
  return rest;
}

/** The storage key of the system image of a config (image.ts: what it is made of). */
export function imageKeyOf(config: Record<string, unknown>): string {
  return imageKey(parseConfig(config, join(PROJECT, 'upaas.yml')));
}

/** A new app of the world holding the example app, committed (pushed to its bare repo). */
export async function exampleApp(world: World, name: string): Promise<void> {
  const app = await world.app(name);
  cpSync(EXAMPLE_APP, app.work, { recursive: true });
  await app.commit({}, 'example app');
}

/** Beside the shared image: its frame index, as the server that made it recorded it (archive/frames.ts). */
const framesFile = (key: string) => join(IMAGE_STORAGE, `${key}.frames.json`);

/**
 * Makes sure the shared storage holds the image of `config` (the shipped
 * one) and its frame index: when it does not, one build in a throw-away world
 * with that storage makes it (debootstrap; minutes). Returns the milliseconds
 * that took, or null.
 */
export async function ensureImage(config: Record<string, unknown>): Promise<number | null> {
  const key = imageKeyOf(config);
  if ([key, `${key}.sha256`].every((name) => existsSync(join(IMAGE_STORAGE, name))) && existsSync(framesFile(key))) return null;
  mkdirSync(IMAGE_STORAGE, { recursive: true });
  const world = new World({}, merge(config, { storage: { settings: { dir: IMAGE_STORAGE } } }));
  try {
    await exampleApp(world, 'bench-image');
    // Made again: an image from before frames has no index to give the worlds.
    rmSync(join(IMAGE_STORAGE, key), { force: true });
    const run = check(await timedRun('node', [BIN, '-c', world.configFile, 'build', 'bench-image'], { cwd: world.dir }), 'the image build', 'is now current');
    const state = State.open(join(world.dir, 'state'));
    try {
      writeFileSync(framesFile(key), state.images.frames(key) ?? '');
    } finally {
      state.close();
    }
    return run.ms;
  } finally {
    world.remove();
    // Only the image is kept there.
    rmSync(join(IMAGE_STORAGE, 'packages', 'bench-image'), { recursive: true, force: true });
  }
}

/**
 * Gives a world (its storage the default, <state>/storage) the shared image of
 * `config` by a hard link (a copy across file systems): its packages stay in
 * its own folder, and nothing the real tests do to the shared folder (they
 * remove its packages) reaches a running bench.
 */
export function linkImage(world: World, config: Record<string, unknown>): void {
  const key = imageKeyOf(config);
  for (const name of [key, `${key}.sha256`]) {
    const target = join(world.storageDir, name);
    mkdirSync(dirname(target), { recursive: true });
    try {
      linkSync(join(IMAGE_STORAGE, name), target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      copyFileSync(join(IMAGE_STORAGE, name), target);
    }
  }
  // The world's server knows the image as the one that made it does: with its frame index.
  const frames = readFileSync(framesFile(key), 'utf8');
  const state = State.open(join(world.dir, 'state'));
  try {
    state.images.add(key, statSync(join(IMAGE_STORAGE, key)).size, frames === '' ? null : frames);
  } finally {
    state.close();
  }
}
