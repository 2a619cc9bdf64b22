/**
 * Server benchmark (part of `npm run bench`), on loopback with the fixture image:
 * - push -> first "-----> " line at the client, over SSH and over HTTP: median
 *   of 20 pushes (target <= 150 ms), against `git ls-remote` over the same
 *   transport (connect + ref advertisement) measured in the same run; the first
 *   line is the server's "Received main at REV", so the builder's own first
 *   line ("Build N of APP") is timed too;
 * - the server's peak RSS while a 300 MB push is received and its build
 *   streams (target <= 150 MB), against its idle RSS in the same run;
 * - downloads of that push's package (over 300 MB, incompressible) over HTTP
 *   (the API's archive route, curl) and SSH (`packages download`), SHA-256
 *   checked by the server on the way, against `cat FILE > /dev/null` of the
 *   stored file (target: >= 0.8x its throughput) and against `openssl dgst
 *   -sha256` of it (the check alone, which every hashed download pays), each
 *   from a warm page cache and from a cold one (caches dropped before each),
 *   median of DOWNLOADS; and the server's peak RSS during the downloads;
 * - then on the real debootstrap image with the shipped upaas.yml (only
 *   paths, ports and the listen address changed) and the example app: push ->
 *   "is now current" over SSH for a one-line change, median of REAL_PUSHES
 *   (default 5, after the first push and one untimed change; target <= 4 s),
 *   against `git ls-remote` over SSH and `tar -c -C TREE . | zstd -T0 -3` of
 *   the package's tree in the same run; where the median push's time goes;
 *   and what the tree cache then takes.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { TestServer, makeKey } from '../test/helpers/server.ts';
import { World, metadata } from '../test/helpers/world.ts';
import { EXAMPLE_APP, type TimedRun, cacheFigures, check, ensureImage, linkImage, median as medianOf, printCache, printTimeline, ratio, row, seconds, shippedConfig, tarZstd, timedRun, unpackPackage } from './common.ts';

const PUSHES = Number(process.env.BENCH_PUSHES ?? 20);
const REAL_PUSHES = Number(process.env.BENCH_REAL_PUSHES ?? process.env.BENCH_ROUNDS ?? 5);
const BIG_MB = Number(process.env.BENCH_BIG_MB ?? 300);
const DOWNLOADS = Number(process.env.BENCH_DOWNLOADS ?? 5);

/** Empties the page cache (root only): the next read of any file comes from the disk. */
async function dropCaches(): Promise<void> {
  await execa('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

/** Median seconds of `command` (a program and its arguments, output to /dev/null), warm or after dropping caches. */
async function timed(command: string[], cold: boolean, check?: (result: { exitCode?: number; stderr: unknown }) => void): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < DOWNLOADS; i++) {
    if (cold) await dropCaches();
    else await execa(command[0] as string, command.slice(1), { stdout: 'ignore', reject: false }); // warm-up
    const started = performance.now();
    const result = await execa(command[0] as string, command.slice(1), { stdout: 'ignore', reject: false });
    times.push((performance.now() - started) / 1000);
    check?.(result);
  }
  return median(times);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** Milliseconds from starting `git push` to its first "-----> " line, and to the builder's first. */
async function timeToFirstLine(cwd: string, env: Record<string, string>, url: string): Promise<{ first: number; build: number }> {
  const started = performance.now();
  let first = 0;
  let build = 0;
  const push = execa('git', ['push', '--quiet', url, 'HEAD:main'], { cwd, env, all: true, reject: false });
  push.all?.on('data', (chunk: Buffer) => {
    const text = String(chunk);
    if (first === 0 && text.includes('-----> ')) first = performance.now() - started;
    if (build === 0 && text.includes('-----> Build ')) build = performance.now() - started;
  });
  const result = await push;
  if (result.exitCode !== 0) throw new Error(`push failed:\n${String(result.all)}`);
  return { first, build };
}

const world = new World();
const admin = await makeKey('bench');
await world.cliWithInput(admin.publicKey, 'users', 'add', 'bench', '--admin');
const server = new TestServer(world);
await server.start();
try {
  const env = server.clientEnv(admin);
  await server.ssh(admin, ['repos', 'create', 'latency']);
  const app = await world.app('local-latency');
  await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' } }) });
  const git = (...args: string[]) => execa('git', args, { cwd: app.work, env });
  await timeToFirstLine(app.work, env, server.url('latency')); // warm-up: builds the fixture image

  // Each transport: pushes to the deploy branch, and `git ls-remote` (connect + ref
  // advertisement, the floor any push pays) as the baseline, interleaved.
  const token = (await world.cli('tokens', 'create', '--user', 'bench')).stdout.split('\n').pop() as string;
  const transports = { ssh: server.url('latency'), http: server.httpUrl('latency', 'bench', token) };
  const latency: Record<string, { firstLines: number[]; buildLines: number[]; lsRemotes: number[] }> = {};
  for (const [name, url] of Object.entries(transports)) {
    const firstLines: number[] = [];
    const buildLines: number[] = [];
    const lsRemotes: number[] = [];
    for (let i = 0; i < PUSHES; i++) {
      await git('commit', '-q', '--allow-empty', '-m', `push ${name} ${i}`);
      const { first, build } = await timeToFirstLine(app.work, env, url);
      firstLines.push(first);
      buildLines.push(build);
      const started = performance.now();
      await git('ls-remote', url);
      lsRemotes.push(performance.now() - started);
    }
    latency[name] = { firstLines, buildLines, lsRemotes };
  }
  const roundTrips: number[] = [];
  for (let i = 0; i < PUSHES; i++) {
    const started = performance.now();
    await server.ssh(admin, ['whoami']);
    roundTrips.push(performance.now() - started);
  }

  await server.ssh(admin, ['repos', 'create', 'big']);
  const big = await world.app('local-big');
  const blob = join(big.work, 'data.bin');
  await execa('dd', ['if=/dev/urandom', `of=${blob}`, 'bs=1M', `count=${BIG_MB}`, 'status=none']);
  writeFileSync(join(big.work, '.upaas.yml'), metadata({ interpreter: { type: 'static' } }));
  await execa('git', ['add', '-A'], { cwd: big.work, env });
  await execa('git', ['commit', '-qm', 'big'], { cwd: big.work, env });
  const pid = server.pid as number;
  const idle = rssMb(pid);
  let peak = idle;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 20);
  const push = await execa('git', ['push', '--quiet', server.url('big'), 'HEAD:main'], { cwd: big.work, env, all: true, reject: false });
  clearInterval(sampler);
  if (push.exitCode !== 0 || !String(push.all).includes('is now current for big')) throw new Error(`big push failed:\n${String(push.all).slice(-2000)}`);

  // Downloads of the big package, against cat of its stored file.
  const pkg = (await world.packages('big')).find((p) => p.current);
  if (!pkg) throw new Error('the big push made no package');
  const file = world.packageFile('big', pkg);
  const ok = (what: string) => (result: { exitCode?: number; stderr: unknown }) => {
    if (result.exitCode !== 0) throw new Error(`${what} failed: ${String(result.stderr)}`);
  };
  const known = join(world.dir, 'known_hosts');
  const sshDownload = ['ssh', '-i', admin.privateFile, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${known}`, '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-p', String(server.sshPort), 'git@127.0.0.1', 'packages', 'download', 'big'];
  const httpDownload = ['curl', '--fail', '--silent', '--show-error', '--output', '/dev/null', '-H', `Authorization: Bearer ${token}`, `http://127.0.0.1:${server.httpPort}/api/v1/apps/big/packages/current/archive`];
  const downloads: Record<string, { cat: number; hash: number; http: number; ssh: number }> = {};
  let downloadPeak = rssMb(pid);
  const downloadIdle = downloadPeak;
  const downloadSampler = setInterval(() => {
    downloadPeak = Math.max(downloadPeak, rssMb(pid));
  }, 20);
  for (const cache of ['warm', 'cold'] as const) {
    const cold = cache === 'cold';
    downloads[cache] = {
      cat: await timed(['cat', file], cold, ok('cat')),
      // The check alone: what any download that hashes every byte pays at least.
      hash: await timed(['openssl', 'dgst', '-sha256', file], cold, ok('openssl dgst')),
      http: await timed(httpDownload, cold, ok('HTTP download')),
      ssh: await timed(sshDownload, cold, ok('SSH download')),
    };
  }
  clearInterval(downloadSampler);

  const roundTrip = median(roundTrips);
  console.log(`\nupaas server benchmark (loopback, fixture image), measured in one run`);
  for (const [name, { firstLines, buildLines, lsRemotes }] of Object.entries(latency)) {
    const firstLine = median(firstLines);
    const floor = median(lsRemotes);
    console.log(`push -> first "-----> " line over ${name}, median of ${PUSHES}`.padEnd(52), `${firstLine.toFixed(0)} ms (target <= 150 ms)`);
    console.log(`  git ls-remote over ${name}, median (baseline)`.padEnd(52), `${floor.toFixed(0)} ms`);
    console.log('  ratio first line / ls-remote'.padEnd(52), (firstLine / floor).toFixed(2));
    console.log(`  push -> "-----> Build N" line over ${name}, median`.padEnd(52), `${median(buildLines).toFixed(0)} ms`);
  }
  console.log('ssh whoami round trip, median'.padEnd(52), `${roundTrip.toFixed(0)} ms`);
  console.log(`server peak RSS, ${BIG_MB} MB push + build streaming`.padEnd(52), `${peak.toFixed(0)} MB (target <= 150 MB)`);
  console.log('  server idle RSS (baseline)'.padEnd(52), `${idle.toFixed(0)} MB`);
  console.log('  ratio peak / idle'.padEnd(52), (peak / idle).toFixed(2));
  const mib = pkg.bytes / 1024 / 1024;
  for (const [cache, { cat, hash, http, ssh }] of Object.entries(downloads)) {
    console.log(`download of a ${mib.toFixed(0)} MiB package, ${cache} page cache, median of ${DOWNLOADS}`);
    console.log('  cat FILE > /dev/null (baseline)'.padEnd(52), `${(mib / cat).toFixed(0)} MiB/s`);
    console.log('  openssl dgst -sha256 FILE (the check alone)'.padEnd(52), `${(mib / hash).toFixed(0)} MiB/s, ratio to cat ${(cat / hash).toFixed(2)}`);
    for (const [name, seconds] of [['HTTP archive route (curl), hash checked', http], ['SSH packages download, hash checked', ssh]] as const) {
      console.log(`  ${name}`.padEnd(52), `${(mib / seconds).toFixed(0)} MiB/s, ratio to cat ${(cat / seconds).toFixed(2)} (target >= 0.8), to the check alone ${(hash / seconds).toFixed(2)}`);
    }
  }
  console.log('server peak RSS during the downloads'.padEnd(52), `${downloadPeak.toFixed(0)} MB (idle before them ${downloadIdle.toFixed(0)} MB, ratio ${(downloadPeak / downloadIdle).toFixed(2)})`);
} finally {
  await server.stop();
  world.remove();
}

/**
 * The real image, the shipped config, the example app: pushes of one-line
 * changes over SSH to "is now current", against `git ls-remote` over SSH and
 * tar | zstd of the package's tree.
 */
async function realPushes(): Promise<void> {
  const config = shippedConfig();
  const madeImage = await ensureImage(config);
  const world = new World({}, config);
  linkImage(world, config);
  const admin = await makeKey('bench-real');
  const server = new TestServer(world);
  try {
    const added = await world.cliWithInput(admin.publicKey, 'users', 'add', 'bench', '--admin');
    if (added.exitCode !== 0) throw new Error(`users add failed: ${added.stderr}`);
    await server.start();
    const env = server.clientEnv(admin);
    const made = await server.ssh(admin, ['repos', 'create', 'hello']);
    if (made.exitCode !== 0) throw new Error(`repos create failed: ${made.stderr}`);
    const app = await world.app('local-hello');
    const git = (...args: string[]) => execa('git', args, { cwd: app.work, env });
    const url = server.url('hello');
    const watches = [
      { dir: join(world.storageDir, 'packages', 'hello'), label: 'package file stored' },
      { dir: join(world.dir, 'state/trees'), label: 'a new tree layer begun' },
    ];
    const push = async () => check(await timedRun('git', ['push', url, 'HEAD:main'], { cwd: app.work, env }, watches), 'git push', 'is now current for hello');
    cpSync(EXAMPLE_APP, app.work, { recursive: true });
    const script = join(app.work, 'app.py');
    const original = readFileSync(script, 'utf8').split('\n');
    /** Changes the first line of app.py (its docstring) and commits. */
    const change = async (label: string) => {
      writeFileSync(script, [original[0]?.replace('step.', `step (${label}).`), ...original.slice(1)].join('\n'));
      await git('commit', '-q', '-am', `one line: ${label}`);
    };
    // The example app, pushed: the first build (from the image).
    await git('add', '-A');
    await git('commit', '-qm', 'example app');
    const firstPush = await push();
    await change('warm-up');
    const warmPush = await push();
    const pushes: TimedRun[] = [];
    const lsRemotes: number[] = [];
    for (let i = 1; i <= REAL_PUSHES; i++) {
      await change(`push ${i}`);
      pushes.push(await push());
      const started = performance.now();
      await git('ls-remote', url);
      lsRemotes.push(performance.now() - started);
    }
    // "is now current" as the pusher sees it: the arrival of that line.
    const current = (run: TimedRun) => run.steps.find((step) => step.text.includes('is now current'))?.at ?? run.ms;
    const pkg = (await world.packages('hello')).find((p) => p.current);
    if (!pkg) throw new Error('the pushes made no current package');
    const tree = join(world.dir, 'baseline-tree');
    await unpackPackage(world.packageFile('hello', pkg), tree);
    const tars: number[] = [];
    for (let i = 0; i < REAL_PUSHES; i++) tars.push(await tarZstd(tree));
    const figures = await cacheFigures(world);

    const toCurrent = medianOf(pushes.map(current));
    const floor = medianOf(lsRemotes);
    const tar = medianOf(tars);
    console.log('\nupaas server benchmark, real debootstrap image: shipped upaas.yml (paths, ports, listen address changed), example app, one run');
    if (madeImage !== null) row('the system image was made first (debootstrap)', seconds(madeImage));
    row('first push (first build, from the image)', seconds(current(firstPush)));
    row('one-line change, first after it (untimed warm-up)', seconds(current(warmPush)));
    row(`push -> "is now current" over SSH, median of ${REAL_PUSHES}`, `${seconds(toCurrent)} (target <= 4 s)`);
    row('  all pushes', pushes.map((run) => seconds(current(run))).join(', '));
    row('  push -> git push exits, median', seconds(medianOf(pushes.map((run) => run.ms))));
    row('  git ls-remote over SSH, median (baseline)', `${floor.toFixed(0)} ms`);
    row('  tar -c -C TREE . | zstd -T0 -3, warm, median (baseline)', seconds(tar));
    row('  ratio push -> current / tar|zstd', ratio(toCurrent, tar));
    console.log('  where the median push\'s time goes (step line to step line):');
    const byCurrent = [...pushes].sort((a, b) => current(a) - current(b));
    printTimeline(byCurrent[Math.floor(byCurrent.length / 2)] as TimedRun, 'git push start -> first "-----> " line');
    printCache('  tree cache after the pushes:', figures);
    const left = world.leftovers();
    if (left.length > 0) console.log(`LEFT BEHIND: ${left.join('; ')}`);
  } finally {
    await server.stop();
    world.remove();
  }
}

await realPushes();
