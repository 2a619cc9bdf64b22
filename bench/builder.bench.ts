/**
 * Builder benchmark (`npm run bench`), on the real debootstrap image (shared
 * with the real tests in test/.cache/real-storage, made here when missing,
 * hard-linked into each world's own storage) and the example app
 * (examples/hello), with the shipped upaas.yml (only paths changed).
 * Measured in one run:
 *
 * 1. A no-change incremental build with the admin's system and finalize
 *    actions `true`: the whole `upaas -c CONFIG build hello` process, timed
 *    end to end (median of BENCH_ROUNDS, default 5, after one build that puts
 *    the tree in the cache), against `tar -c -C TREE . | zstd -T0 -3 >
 *    /dev/null` of the same package's tree (unpacked once; each round runs it
 *    twice and times the second, from a warm page cache). Target <= 2.0x.
 *    Also that pipeline with the builder's tar flags and a sha256sum.
 *    Beside it: the builder's own work in process (build(): total minus the
 *    admin/app commands), the same build unconfined (builder.network host,
 *    no builder.limits) through the command line, and where the time of the
 *    median command-line build goes (its step lines' arrival).
 * 2. (bench/server.bench.ts: push -> "is now current" over SSH.)
 * 3. A fresh build (`build hello --fresh`, the image stored) and the first
 *    build of a new app, each with the tree cache on (shipped builder.cache)
 *    and off (builder.cache.trees 0: the base unpacked in full, as before the
 *    cache), median of BENCH_FRESH_ROUNDS (default 3), interleaved; ratio
 *    cache on / cache off (target <= 1.0: no slower than without the cache).
 * 4. What the cache takes: du of STATE/trees, the trees and layers `doctor
 *    --json` reports, and the page cache its files occupy (fincore).
 * 5. The command line's start: `node bin/upaas.js whoami` (local, from the
 *    bundle) against `node -e 0`, and `npx upaas whoami` (npx's own start on
 *    top), medians of 11 (target <= 0.3 s without npx).
 *
 * The gzip path is no longer measured here: its image has a key of its own
 * (builder.compression is part of it), so it would cost a debootstrap run.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { dump, load } from 'js-yaml';
import { type BuildOutcome, build } from '../src/builder/builder.ts';
import { parseConfig } from '../src/config/config.ts';
import { loadYamlFile } from '../src/config/yaml.ts';
import { State } from '../src/state/state.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { World, merge } from '../test/helpers/world.ts';
import {
  BIN,
  type TimedRun,
  cacheFigures,
  check,
  diskUse,
  ensureImage,
  exampleApp,
  linkImage,
  median,
  medianRun,
  mib,
  printCache,
  printTimeline,
  ratio,
  row,
  seconds,
  shippedConfig,
  tarZstd,
  timedRun,
  unpackPackage,
} from './common.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const FRESH_ROUNDS = Number(process.env.BENCH_FRESH_ROUNDS ?? Math.min(3, ROUNDS));

const base = shippedConfig();
const TRUE_ACTIONS = { interpreters: { actions: { setup: { system: ['true'], finalize: ['true'] } } } };
const UNCONFINED = { builder: { network: 'host', limits: { processes: 0, memory: 0, disk: 0 } } };

/** Another config file beside the world's, on the same paths, with `over` merged in. */
function variant(world: World, name: string, over: Record<string, unknown>): string {
  const file = join(world.dir, `${name}.yml`);
  writeFileSync(file, dump(merge(load(readFileSync(world.configFile, 'utf8')) as Record<string, unknown>, over)));
  return file;
}

/**
 * `node bin/upaas.js -c CONFIG build APP ...`, timed end to end; throws unless it ends well. Its
 * steps include when the package file was stored and when its tree layer was begun in the cache.
 */
async function cli(world: World, config: string, ...args: string[]): Promise<TimedRun> {
  const app = args[1] as string;
  const watches = [
    { dir: join(world.storageDir, 'packages', app), label: 'package file stored' },
    { dir: join(world.dir, 'state/trees'), label: 'a new tree layer begun' },
  ];
  const run = await timedRun('node', [BIN, '-c', config, ...args], { cwd: world.dir }, watches);
  return check(run, `upaas ${args.join(' ')}`, 'is now current');
}

const unpacked = (run: TimedRun) => run.steps.some((step) => step.text.startsWith('Unpacking current package'));

const madeImage = await ensureImage(base);
const on = new World({}, base);
const off = new World({ builder: { cache: { trees: 0 } } }, base);
let state: State | null = null;
try {
  for (const world of [on, off]) {
    linkImage(world, base);
    await exampleApp(world, 'hello');
  }
  // First builds, one each.
  const offFirst = await cli(off, off.configFile, 'build', 'hello');
  const onFirst = await cli(on, on.configFile, 'build', 'hello');

  // 3. Fresh builds and first builds of new apps, cache on and off, interleaved. Before section 1,
  // whose config (actions `true`) has another image key: its retention does not count the image's
  // tree as one to keep.
  const fresh = { on: [] as TimedRun[], off: [] as TimedRun[] };
  const first = { on: [] as TimedRun[], off: [] as TimedRun[] };
  for (let round = 1; round <= FRESH_ROUNDS; round++) {
    fresh.on.push(await cli(on, on.configFile, 'build', 'hello', '--fresh'));
    fresh.off.push(await cli(off, off.configFile, 'build', 'hello', '--fresh'));
    const name = `new${round}`;
    await exampleApp(on, name);
    first.on.push(await cli(on, on.configFile, 'build', name));
    await exampleApp(off, name);
    first.off.push(await cli(off, off.configFile, 'build', name));
  }
  const afterFresh = await cacheFigures(on);
  const offAtEnd = await cacheFigures(off);

  // 1. No-change incremental builds, actions `true`; one first, so its tree is the one cached.
  const trueConfig = variant(on, 'true-actions', TRUE_ACTIONS);
  const unconfinedConfig = variant(on, 'unconfined', merge(TRUE_ACTIONS, UNCONFINED));
  await cli(on, trueConfig, 'build', 'hello');
  const [current] = (await on.packages('hello')).filter((pkg) => pkg.current);
  if (!current) throw new Error('no current package of hello');
  const tree = join(on.dir, 'baseline-tree');
  await unpackPackage(on.packageFile('hello', current), tree);
  const config = parseConfig(loadYamlFile(trueConfig), trueConfig);
  state = State.open(config.paths.state);
  const services = { config, state, storage: new LocalStorage(on.storageDir) };
  const inProcess = async () => {
    const lines: string[] = [];
    const outcome: BuildOutcome = await build(services, { app: 'hello', onLine: (line) => lines.push(line) });
    if (!outcome.ok) throw new Error(`in-process build failed:\n${lines.slice(-30).join('\n')}`);
    return { ...outcome.timings, unpacked: lines.some((line) => line.includes('-----> Unpacking current package')), squashed: lines.some((line) => line.includes('squashed into one')) };
  };
  const whole: TimedRun[] = [];
  const unconfined: TimedRun[] = [];
  const own: number[] = [];
  const inTotal: number[] = [];
  const baseline: number[] = [];
  const asBuilder: number[] = [];
  let fullUnpacks = 0;
  let squashed = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const run = await cli(on, trueConfig, 'build', 'hello');
    whole.push(run);
    const timings = await inProcess();
    own.push(timings.totalMs - timings.commandMs);
    inTotal.push(timings.totalMs);
    const loose = await cli(on, unconfinedConfig, 'build', 'hello');
    unconfined.push(loose);
    fullUnpacks += [unpacked(run), timings.unpacked, unpacked(loose)].filter(Boolean).length;
    squashed += [run, loose].filter((one) => one.output.includes('squashed into one')).length + (timings.squashed ? 1 : 0);
    baseline.push(await tarZstd(tree));
    asBuilder.push(await tarZstd(tree, true));
  }
  state.close();
  state = null;
  const [last] = (await on.packages('hello')).filter((pkg) => pkg.current);
  const treeBytes = await diskUse(tree);
  rmSync(tree, { recursive: true, force: true });
  const afterIncremental = await cacheFigures(on, trueConfig);

  const wholeMs = median(whole.map((run) => run.ms));
  const baselineMs = median(baseline);
  console.log(`\nupaas builder benchmark: real debootstrap image, example app, shipped upaas.yml; medians of ${ROUNDS} (fresh/first: ${FRESH_ROUNDS}), one run`);
  console.log('1. incremental build, no change, system/finalize actions `true`');
  row('  upaas build hello, whole process (cache on)', seconds(wholeMs));
  row('  tar -c -C TREE . | zstd -T0 -3 > /dev/null, warm (baseline)', seconds(baselineMs));
  row('  ratio whole build / tar|zstd (target <= 2.0)', ratio(wholeMs, baselineMs));
  row('  the same with the builder\'s tar flags, | sha256sum', seconds(median(asBuilder)));
  row('  builder in process: total', seconds(median(inTotal)));
  row('  builder in process: own work (total - commands)', seconds(median(own)));
  row('  ratio own work / tar|zstd', ratio(median(own), baselineMs));
  row('  same build unconfined (network host, no limits), whole', seconds(median(unconfined.map((run) => run.ms))));
  row('  ratio confined / unconfined (whole process)', ratio(wholeMs, median(unconfined.map((run) => run.ms))));
  row('  builds that unpacked the package in full', `${fullUnpacks} of ${3 * ROUNDS} (past builder.cache.layers a tree is squashed)`);
  row('  builds that squashed their tree', `${squashed} of ${3 * ROUNDS}`);
  row('  package / its unpacked tree', `${mib(last?.bytes ?? 0)} / ${mib(treeBytes)}`);
  row('  all rounds, whole process', whole.map((run) => seconds(run.ms)).join(', '));
  row('  all rounds, tar|zstd', baseline.map(seconds).join(', '));
  console.log('  where the median build\'s time goes (step line to step line):');
  printTimeline(medianRun(whole), 'process start -> first step line');
  console.log('3. fresh build and first build of a new app: tree cache on (shipped) vs off (builder.cache.trees 0)');
  if (FRESH_ROUNDS === 0) row('  fresh and first builds', 'not measured (BENCH_FRESH_ROUNDS=0)');
  for (const [name, runs] of FRESH_ROUNDS === 0 ? [] : ([['build hello --fresh (image stored)', fresh], ['first build of a new app', first]] as const)) {
    const onMs = median(runs.on.map((run) => run.ms));
    const offMs = median(runs.off.map((run) => run.ms));
    row(`  ${name}, cache on`, `${seconds(onMs)} (${runs.on.map((run) => seconds(run.ms)).join(', ')})`);
    row(`  ${name}, cache off (baseline)`, `${seconds(offMs)} (${runs.off.map((run) => seconds(run.ms)).join(', ')})`);
    row('  ratio cache on / off (target <= 1.0)', ratio(onMs, offMs));
  }
  row('  very first build, empty cache (image unpacked into it)', seconds(onFirst.ms));
  row('  very first build, cache off', seconds(offFirst.ms));
  if (madeImage !== null) row('  (the system image was made first: one build, debootstrap)', seconds(madeImage));
  if (FRESH_ROUNDS > 0) {
    console.log('  where the median fresh build\'s time goes, cache on:');
    printTimeline(medianRun(fresh.on), 'process start -> first step line');
    console.log('  the same, cache off:');
    printTimeline(medianRun(fresh.off), 'process start -> first step line');
  }
  console.log('4. what the tree cache takes');
  printCache(`  after section 3 (hello and ${FRESH_ROUNDS} new apps over the image):`, afterFresh);
  printCache(`  after section 1 (then ${1 + 3 * ROUNDS} incremental builds of hello):`, afterIncremental);
  row('  with builder.cache.trees 0: du of STATE/trees', mib(offAtEnd.disk));
  console.log('5. command line start (a local command, from the bundle)');
  const start = async (file: string, args: string[], cwd = on.dir) => {
    const times: number[] = [];
    for (let round = 0; round < 11; round++) {
      const run = await timedRun(file, args, { cwd });
      if (run.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} failed:\n${run.output}`);
      times.push(run.ms);
    }
    return median(times);
  };
  const bare = await start('node', ['-e', '0']);
  const whoami = await start('node', [BIN, '-c', on.configFile, 'whoami']);
  // npx finds the checkout's own bin (package.json "bin") from the checkout.
  const viaNpx = await start('npx', ['--no-install', 'upaas', '-c', on.configFile, 'whoami'], dirname(dirname(BIN)));
  row('  node bin/upaas.js whoami (target <= 0.3 s)', seconds(whoami));
  row('  node -e 0 (baseline)', seconds(bare));
  row('  ratio whoami / node -e 0', ratio(whoami, bare));
  row('  npx upaas whoami', seconds(viaNpx));
  const left = [...on.leftovers(), ...off.leftovers()];
  if (left.length > 0) console.log(`LEFT BEHIND: ${left.join('; ')}`);
} finally {
  state?.close();
  on.remove();
  off.remove();
}
