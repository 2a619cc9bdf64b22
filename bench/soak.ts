/**
 * Soak test (`npm run soak`, not part of CI): a real server on the fixture
 * image, N builds (default 100) of three static apps pushed over SSH or
 * started with `ssh ... build APP`; a seeded random third of them fail (the
 * app's action exits 1), are cancelled (SIGTERM with builder.grace 0, then a
 * restart) or have the server SIGKILLed at a random moment (then a restart);
 * now and then a fresh build; retention at its smallest. Each build's outcome
 * and the current package are checked as it ends; at the end (server stopped
 * cleanly) it counts what is left behind (mounts, processes, temp dirs,
 * cgroups, orphan files, lost current packages), runs `upaas doctor --json`
 * and prints one line; the exit code is 1 when anything was found.
 *
 *   node --import tsx bench/soak.ts [--builds N] [--seed S] [--keep]
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { type Result, type ResultPromise, execa } from 'execa';
import { detectLayout, leftoverCgroups, parentName } from '../src/sandbox/cgroups.ts';
import { type KeyPair, makeKey } from '../test/helpers/server.ts';
import { PROJECT, World, fastConfig, git, metadata } from '../test/helpers/world.ts';

const BIN = join(PROJECT, 'bin/upaas.js');
const APPS = ['alpha', 'beta', 'gamma'];
const FRESH_SHARE = 0.15;
/** A client (git push, ssh build) that takes longer than this has hung. */
const CLIENT_TIMEOUT_MS = 180_000;
/** A server that takes longer than this to start or to stop has hung. */
const SERVER_TIMEOUT_MS = 30_000;

type Kind = 'ok' | 'fail' | 'cancel' | 'kill';
type Outcome = 'ok' | 'failed' | 'cancelled' | 'killed';

interface Plan {
  index: number;
  app: string;
  kind: Kind;
  fresh: boolean;
  command: boolean;
  /** The build line the interruption waits for (null: it counts from the client's start). */
  step: string | null;
  /** When the interruption comes: a share of a typical build's duration after the start (past 1: often after its end), or of STEP_DELAY_MS after the step's line. */
  moment: number;
}

/**
 * Build lines an interruption may wait for, so that the short moments are hit
 * too: the storage write, the state transaction and retention come right
 * after the archive line and right after "is now current".
 */
const STEPS = ['-----> Build ', '-----> Unpacking', '-----> Running system actions', ' app at ', '-----> Running after action', '-----> Creating package archive', 'is now current'];
const STEP_DELAY_MS = 400;

interface App {
  name: string;
  work: string;
  /** Whether the newest local commit's action fails (null: no commit yet). */
  failing: boolean | null;
}

interface BuildJson {
  id: number;
  status: 'running' | 'succeeded' | 'failed';
  fresh: boolean;
  errorKind: string | null;
  errorMessage: string | null;
  packageId: string | null;
}

interface PackageJson {
  id: string;
  current: boolean;
  file: boolean;
}

interface DoctorJson {
  healthy: boolean;
  problems: { check: string; kind: string; message: string }[];
}

/** mulberry32: a small seeded PRNG, numbers in [0, 1). */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `promise`'s value, or null once `ms` have passed (the timer does not outlive it). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** The builds to run: a third of them (shuffled) fail, are cancelled or killed, in equal parts. */
function makePlans(count: number, random: () => number): Plan[] {
  const odd = Math.floor(count / 3);
  const odd3: Kind[] = ['fail', 'cancel', 'kill'];
  const kinds: Kind[] = Array.from({ length: count }, (_, i) => (i < odd ? (odd3[i % 3] as Kind) : 'ok'));
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j] as Kind, kinds[i] as Kind];
  }
  return kinds.map((kind, index) => ({
    index,
    app: APPS[Math.floor(random() * APPS.length)] as string,
    kind,
    fresh: random() < FRESH_SHARE,
    command: random() < 0.3,
    step: random() < 0.5 ? (STEPS[Math.floor(random() * STEPS.length)] as string) : null,
    moment: random() * 1.2,
  }));
}

/** `upaas serve` as a child process on ports the kernel picks (port 0), read from its log lines; its log goes to a file. */
class Server {
  private child: ResultPromise | null = null;
  private exit: Promise<Result> | null = null;
  sshPort = 0;
  httpPort = 0;
  starts = 0;

  constructor(
    private readonly world: World,
    readonly logFile: string,
  ) {}

  /** Starts the server and waits for the lines that name its ports. */
  async start(): Promise<void> {
    this.starts++;
    appendFileSync(this.logFile, `---- soak: server start ${this.starts}\n`);
    const child = execa('node', [BIN, '-c', this.world.configFile, 'serve'], { cwd: this.world.dir, reject: false, buffer: false, stdin: 'ignore', stdout: 'ignore' });
    this.child = child;
    this.exit = child.then((result) => result);
    let text = '';
    const ports = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not start within ${SERVER_TIMEOUT_MS} ms`)), SERVER_TIMEOUT_MS);
      child.stderr?.on('data', (chunk: Buffer) => {
        appendFileSync(this.logFile, chunk);
        text += String(chunk);
        const http = /git over HTTP on \S+:([0-9]+)/.exec(text);
        const ssh = /git and admin commands over SSH on \S+:([0-9]+)/.exec(text);
        if (http && ssh) {
          clearTimeout(timer);
          this.httpPort = Number(http[1]);
          this.sshPort = Number(ssh[1]);
          text = '';
          resolve();
        } else if (text.length > 1 << 16) text = text.slice(-4096);
      });
      void this.exit?.then((result) => {
        clearTimeout(timer);
        reject(new Error(`the server exited (code ${result.exitCode}, signal ${result.signal ?? '-'}) before listening; see ${this.logFile}`));
      });
    });
    await ports;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** SIGTERM, then its exit (SIGKILL past the time limit); returns a problem or null. */
  async stop(): Promise<string | null> {
    if (!this.child || !this.exit) return null;
    this.child.kill('SIGTERM');
    const result = await within(this.exit, SERVER_TIMEOUT_MS);
    if (result === null) {
      await this.kill();
      return `the server did not exit within ${SERVER_TIMEOUT_MS} ms of SIGTERM (killed)`;
    }
    this.child = null;
    return result.exitCode === 0 ? null : `the server exited with code ${result.exitCode} (signal ${result.signal ?? '-'}) after SIGTERM`;
  }

  /** SIGKILL, then its exit. */
  async kill(): Promise<void> {
    if (!this.child || !this.exit) return;
    this.child.kill('SIGKILL');
    await this.exit;
    this.child = null;
  }

  /** Arguments for ssh as `key`'s owner against this server (host keys neither checked nor kept: the port changes). */
  sshArgs(key: KeyPair): string[] {
    return ['-i', key.privateFile, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-p', String(this.sshPort)];
  }

  url(app: string): string {
    return `ssh://git@127.0.0.1:${this.sshPort}/${app}.git`;
  }
}

/** Everything a run shares. */
interface Soak {
  world: World;
  server: Server;
  key: KeyPair;
  apps: Map<string, App>;
  /** Client durations of successful builds, for the moment of the next interruption. */
  durations: number[];
  problems: string[];
  counts: Record<Outcome, number>;
  /** Interrupted builds whose record did not exist yet (the push was still being received). */
  notStarted: number;
  /** Current packages seen without their file ("app id"), at any check. */
  lostCurrent: Set<string>;
}

/** Environment for git over SSH as the soak's admin. */
function clientEnv(soak: Soak): Record<string, string> {
  return {
    GIT_SSH_COMMAND: ['ssh', ...soak.server.sshArgs(soak.key).slice(0, -2)].join(' '),
    GIT_AUTHOR_NAME: 'Soak',
    GIT_AUTHOR_EMAIL: 'soak@example.invalid',
    GIT_COMMITTER_NAME: 'Soak',
    GIT_COMMITTER_EMAIL: 'soak@example.invalid',
    GIT_CONFIG_GLOBAL: '/dev/null',
  };
}

/** `ssh ... COMMAND` against the running server; throws when it fails. */
async function ssh(soak: Soak, args: string[]): Promise<string> {
  const result = await execa('ssh', [...soak.server.sshArgs(soak.key), 'git@127.0.0.1', ...args], { reject: false, stdin: 'ignore', timeout: CLIENT_TIMEOUT_MS });
  if (result.exitCode !== 0) throw new Error(`ssh ${args.join(' ')}: exit ${result.exitCode}: ${String(result.stderr).trim()}`);
  return String(result.stdout);
}

/** The app's `.upaas.yml`: static, with short sleeps between its actions to interrupt; `failing` makes main exit 1. */
function appMetadata(failing: boolean): string {
  const main = failing ? ['sleep 0.3', 'echo failing on purpose; exit 1'] : ['sleep 0.3', 'date > built-at'];
  return metadata({ interpreter: { type: 'static' }, actions: { setup: { before: 'sleep 0.3', main, after: 'sleep 0.3' } } });
}

/** A new commit in the app's working clone (not pushed). */
async function commit(app: App, failing: boolean, index: number): Promise<void> {
  writeFileSync(join(app.work, '.upaas.yml'), appMetadata(failing));
  writeFileSync(join(app.work, 'round.txt'), `${index}\n`);
  await git(app.work, 'add', '--all');
  await git(app.work, 'commit', '--quiet', '-m', `round ${index}${failing ? ' (fails)' : ''}`);
  app.failing = failing;
}

/** Whether the server's deploy branch is the clone's HEAD (an interrupted push may not have landed). */
async function inSync(soak: Soak, app: App): Promise<boolean> {
  const remote = await execa('git', ['ls-remote', soak.server.url(app.name), 'refs/heads/main'], { cwd: app.work, env: clientEnv(soak), reject: false, timeout: CLIENT_TIMEOUT_MS });
  const head = await git(app.work, 'rev-parse', 'HEAD');
  return String(remote.stdout).split(/\s/)[0] === head;
}

/** Whether this build can be started with `build APP` (no new commit): the server's head already fails or succeeds as planned. */
async function canUseCommand(soak: Soak, plan: Plan, app: App): Promise<boolean> {
  if (!plan.command || app.failing === null || app.failing !== (plan.kind === 'fail')) return false;
  return inSync(soak, app);
}

/** The app's builds and packages as the server lists them. */
async function appState(soak: Soak, app: string): Promise<{ builds: BuildJson[]; packages: PackageJson[] }> {
  const builds = JSON.parse(await ssh(soak, ['builds', app, '--json'])) as BuildJson[];
  const packages = JSON.parse(await ssh(soak, ['packages', app, '--json'])) as PackageJson[];
  return { builds, packages };
}

const currentOf = (packages: PackageJson[]) => packages.find((p) => p.current) ?? null;
const packageFile = (world: World, app: string, id: string) => join(world.storageDir, 'packages', app, `${id}.tar.zst`);

/** Records the app's current package as lost when its record or its storage file says the file is gone. */
function checkCurrentFile(soak: Soak, app: string, packages: PackageJson[]): void {
  const current = currentOf(packages);
  if (current && (!current.file || !existsSync(packageFile(soak.world, app, current.id)))) soak.lostCurrent.add(`${app} ${current.id.slice(0, 12)}`);
}

/** How a build's client ended. */
interface ClientResult {
  exitCode: number | undefined;
  all: string;
  timedOut: boolean;
}

/** A running build client: its end, and a way to wait for a text in its output. */
interface Client {
  result: Promise<ClientResult>;
  /** Resolves once `text` has appeared in the output, or the client has ended. */
  seen: (text: string) => Promise<void>;
}

/** Starts the build's client: `git push` (with `-o fresh`) or `ssh ... build APP` (with `--fresh`). */
function startClient(soak: Soak, app: App, command: boolean, fresh: boolean): Client {
  const options = { all: true, reject: false, timeout: CLIENT_TIMEOUT_MS, stdin: 'ignore' } as const;
  const push = ['push', ...(fresh ? ['-o', 'fresh'] : []), soak.server.url(app.name), 'HEAD:refs/heads/main'];
  const child = command
    ? execa('ssh', [...soak.server.sshArgs(soak.key), 'git@127.0.0.1', 'build', app.name, ...(fresh ? ['--fresh'] : [])], options)
    : execa('git', push, { ...options, cwd: app.work, env: clientEnv(soak) });
  let output = '';
  const waiting = new Set<() => void>();
  child.all?.on('data', (chunk: Buffer) => {
    output += String(chunk);
    for (const check of waiting) check();
  });
  const result = child.then((r) => ({ exitCode: r.exitCode, all: String(r.all), timedOut: r.timedOut }));
  const seen = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!output.includes(text)) return;
        waiting.delete(check);
        resolve();
      };
      waiting.add(check);
      check();
      void result.then(() => resolve());
    });
  return { result, seen };
}

/** What a build record says happened. */
function outcomeOf(build: BuildJson): Outcome | 'running' | 'other' {
  if (build.status === 'running') return 'running';
  if (build.status === 'succeeded') return 'ok';
  if (build.errorKind === 'user') return 'failed';
  if (build.errorMessage?.includes('cancelled')) return 'cancelled';
  if (build.errorMessage?.includes('interrupted')) return 'killed';
  return 'other';
}

/** `pid` and its descendants (the running server's own helpers are not leftovers). */
function processTree(pid: number | undefined): Set<number> {
  const tree = new Set<number>(pid === undefined ? [] : [pid]);
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p))) {
    try {
      // The field after the command, which may hold spaces and parentheses: "PID (COMM) STATE PPID ...".
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  for (let grew = true; grew; ) {
    grew = false;
    for (const [child, parent] of parents) if (tree.has(parent) && !tree.has(child)) grew = Boolean(tree.add(child));
  }
  return tree;
}

/** What the soak's own checks find left behind: mounts and processes in the world (not the running server's), temp dirs in the workdir. */
function leftovers(world: World, serverPid: number | undefined): string[] {
  const found: string[] = [];
  if (existsSync(world.workdir)) for (const entry of readdirSync(world.workdir)) found.push(`temp dir ${entry}`);
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const point = line.split(' ')[1];
    if (point?.startsWith(world.dir)) found.push(`mount ${point}`);
  }
  const server = processTree(serverPid);
  for (const pid of readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p) && !server.has(Number(p)) && Number(p) !== process.pid)) {
    try {
      const inside = (link: string) => readlinkSync(`/proc/${pid}/${link}`).startsWith(world.dir);
      if (inside('root') || inside('cwd')) found.push(`process ${pid} (${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()})`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The build cgroups left under the server's parent folders. */
async function leftoverCgroupNames(world: World): Promise<string[]> {
  try {
    return [...(await leftoverCgroups(detectLayout(), parentName(join(world.dir, 'state')))).keys()].map((name) => `cgroup ${name}`);
  } catch {
    return [];
  }
}

/** SIGTERMs (cancel) or SIGKILLs (kill) the server, then starts it again and checks what the restart left. */
async function interrupt(soak: Soak, kind: 'cancel' | 'kill', label: string): Promise<void> {
  if (kind === 'cancel') {
    const problem = await soak.server.stop();
    if (problem) soak.problems.push(`${label}: ${problem}`);
  } else await soak.server.kill();
  await soak.server.start();
  for (const item of [...leftovers(soak.world, soak.server.pid), ...(await leftoverCgroupNames(soak.world))]) {
    soak.problems.push(`${label}: after the restart: ${item}`);
  }
}

/** Waits for the client, interrupting the server at the plan's moment (after its step's line, or after the start). */
async function drive(soak: Soak, plan: Plan, client: Client, label: string): Promise<ClientResult> {
  if (plan.kind === 'cancel' || plan.kind === 'kill') {
    if (plan.step !== null) await client.seen(plan.step);
    const typical = soak.durations.length > 0 ? median(soak.durations.slice(-10)) : 3000;
    await within(client.result, plan.moment * (plan.step === null ? typical : STEP_DELAY_MS / 1.2));
    await interrupt(soak, plan.kind, label);
  }
  return client.result;
}

/** Which outcomes a plan allows: an interruption may come before the build starts (none) or after it ends (ok). */
const ALLOWED: Record<Kind, (Outcome | 'none')[]> = {
  ok: ['ok'],
  fail: ['failed'],
  cancel: ['cancelled', 'ok', 'none'],
  kill: ['killed', 'ok', 'none'],
};

/** Runs one planned build and checks its outcome and the app's current package; returns a progress line. */
async function runOne(soak: Soak, plan: Plan, total: number): Promise<string> {
  const app = soak.apps.get(plan.app) as App;
  const label = `build ${plan.index + 1} (${plan.app}, ${plan.kind})`;
  const before = await appState(soak, app.name);
  const lastId = before.builds[0]?.id ?? 0;
  const command = await canUseCommand(soak, plan, app);
  if (!command) await commit(app, plan.kind === 'fail', plan.index);
  const started = performance.now();
  const result = await drive(soak, plan, startClient(soak, app, command, plan.fresh), label);
  const ms = performance.now() - started;
  const after = await appState(soak, app.name);
  const added = after.builds.filter((b) => b.id > lastId);
  const build = added.length === 1 ? (added[0] as BuildJson) : null;
  const outcome = added.length === 0 ? 'none' : build ? outcomeOf(build) : 'other';
  const output = () => String(result.all).trim().split('\n').slice(-8).join('\n    ');
  if (result.timedOut) soak.problems.push(`${label}: the client hung (killed after ${CLIENT_TIMEOUT_MS} ms)`);
  if (added.length > 1) soak.problems.push(`${label}: ${added.length} new build records: ${added.map((b) => b.id).join(', ')}`);
  if (!(ALLOWED[plan.kind] as string[]).includes(outcome)) {
    soak.problems.push(`${label}: expected ${ALLOWED[plan.kind].join(' or ')}, got ${outcome}${build ? ` (build ${build.id}: ${build.errorKind ?? ''} ${build.errorMessage ?? ''})` : ''}\n    ${output()}`);
  } else {
    const counted: Outcome = outcome === 'none' ? (plan.kind === 'cancel' ? 'cancelled' : 'killed') : (outcome as Outcome);
    soak.counts[counted]++;
    if (outcome === 'none') soak.notStarted++;
  }
  if (plan.kind === 'ok' && result.exitCode !== 0) soak.problems.push(`${label}: the client exited with ${result.exitCode}\n    ${output()}`);
  if (plan.kind === 'fail' && command && result.exitCode !== 1) soak.problems.push(`${label}: build of a failing revision exited with ${result.exitCode}, not 1`);
  if (build && plan.fresh && !build.fresh && outcome !== 'none') soak.problems.push(`${label}: asked fresh, build ${build.id} was not`);
  checkCurrent(soak, label, outcome === 'ok' ? (build?.packageId ?? null) : (currentOf(before.packages)?.id ?? null), after.packages);
  checkCurrentFile(soak, app.name, after.packages);
  if (outcome === 'ok') soak.durations.push(ms);
  const how = `${command ? 'build' : 'push'}${plan.fresh ? ' fresh' : ''}${momentText(plan)}`;
  const said = outcome === 'ok' ? '' : `: ${lastWords(result.all)}`;
  return `[${plan.index + 1}/${total}] ${plan.app} ${plan.kind} (${how}) -> ${outcome}${build ? ` #${build.id}` : ''} in ${(ms / 1000).toFixed(1)} s${said}`;
}

/** When an interruption was planned, for the progress line. */
function momentText(plan: Plan): string {
  if (plan.kind !== 'cancel' && plan.kind !== 'kill') return '';
  if (plan.step === null) return `, at ${Math.round(plan.moment * 100)}% of a build`;
  return `, ${Math.round((plan.moment * STEP_DELAY_MS) / 1.2)} ms after "${plan.step.replace('-----> ', '').trim()}"`;
}

/** The line of a client's output that says how it ended: its last "!     " line, or its last line. */
function lastWords(output: string): string {
  const lines = output.trim().split('\n').map((line) => line.replace(/^remote: /, '').trim());
  return JSON.stringify((lines.filter((line) => line.startsWith('!')).pop() ?? lines.pop() ?? '').slice(0, 160));
}

/** The current package must be the new build's (it succeeded) or the one before (it did not). */
function checkCurrent(soak: Soak, label: string, expected: string | null, packages: PackageJson[]): void {
  const current = currentOf(packages)?.id ?? null;
  if (current !== expected) soak.problems.push(`${label}: current package is ${current?.slice(0, 12) ?? 'none'}, expected ${expected?.slice(0, 12) ?? 'none'}`);
}

/** Files under storage/packages/ that no package record with a file names (the soak's own orphan count). */
function orphanPackageFiles(world: World, packages: Map<string, PackageJson[]>): string[] {
  const root = join(world.storageDir, 'packages');
  const named = new Set<string>();
  for (const [app, list] of packages) for (const p of list.filter((p) => p.file)) named.add(`${app}/${p.id}.tar.zst`).add(`${app}/${p.id}.tar.zst.sha256`);
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (!named.has(relative(root, path))) found.push(relative(world.storageDir, path));
    }
  };
  if (existsSync(root)) walk(root);
  const tmp = join(world.storageDir, '.tmp');
  if (existsSync(tmp)) for (const entry of readdirSync(tmp)) found.push(`.tmp/${entry}`);
  return found;
}

/** What is wrong with the apps' bare repos: `git fsck` errors and lock files an interrupted push left. */
async function brokenRepos(world: World): Promise<string[]> {
  const found: string[] = [];
  for (const app of APPS) {
    const repo = join(world.dir, 'repos', `${app}.git`);
    const fsck = await execa('git', ['--git-dir', repo, 'fsck', '--no-progress'], { reject: false, env: { GIT_CONFIG_GLOBAL: '/dev/null' } });
    if (fsck.exitCode !== 0) found.push(`${app}.git: git fsck exited with ${fsck.exitCode}: ${String(fsck.stderr).trim().split('\n')[0]}`);
    const locks = await execa('find', [repo, '-name', '*.lock']);
    for (const lock of String(locks.stdout).split('\n').filter(Boolean)) found.push(`${app}.git: lock file ${relative(repo, lock)}`);
  }
  return found;
}

/** `upaas doctor --json`, or null when this checkout has no doctor command yet. */
async function doctor(world: World): Promise<{ report: DoctorJson | null; exitCode: number; text: string }> {
  if ((await world.cli('doctor', '--help')).exitCode !== 0) return { report: null, exitCode: -1, text: 'no doctor command' };
  const result = await world.cli('doctor', '--json');
  try {
    return { report: JSON.parse(result.stdout) as DoctorJson, exitCode: result.exitCode, text: result.stderr };
  } catch {
    return { report: null, exitCode: result.exitCode, text: `unreadable output: ${result.stdout.slice(0, 400)} ${result.stderr.slice(0, 400)}` };
  }
}

/** Makes the world: its config (fixture image, storage inside it, small retention, grace 0, port 0). */
function makeWorld(): World {
  const base = fastConfig('');
  delete base.storage; // state/storage, inside the world
  return new World(
    {
      builder: { grace: 0, workers: 2 },
      apps: { packages_per_app: 2, builds_per_app: 5 },
      server: { host: '127.0.0.1', ssh: { port: 0 }, http: { port: 0 } },
    },
    base,
  );
}

/** Adds the admin (locally, before the server starts). */
async function addAdmin(soak: Soak): Promise<void> {
  const added = await soak.world.cliWithInput(soak.key.publicKey, 'users', 'add', 'soak', '--admin');
  if (added.exitCode !== 0) throw new Error(`users add: ${added.stderr}`);
}

/** Creates the apps over SSH and a working clone of each. */
async function makeApps(soak: Soak): Promise<void> {
  for (const name of APPS) {
    await ssh(soak, ['repos', 'create', name]);
    const work = join(soak.world.dir, 'src', name);
    mkdirSync(work, { recursive: true });
    await git(work, 'init', '--quiet', '--initial-branch=main');
    soak.apps.set(name, { name, work, failing: null });
  }
}

/** The final checks once the server has stopped: leftovers, orphans, lost current packages, doctor; returns the summary's counts part. */
async function finalChecks(soak: Soak): Promise<{ text: string; bad: boolean }> {
  const { world } = soak;
  const left = leftovers(world, undefined);
  const cgroups = await leftoverCgroupNames(world);
  const packages = new Map<string, PackageJson[]>();
  for (const app of APPS) {
    const list = await world.packages(app);
    packages.set(app, list as unknown as PackageJson[]);
    checkCurrentFile(soak, app, list as unknown as PackageJson[]);
  }
  const ownOrphans = orphanPackageFiles(world, packages);
  const repos = await brokenRepos(world);
  const doc = await doctor(world);
  const stray = doc.report?.problems.filter((p) => p.kind === 'stray-file') ?? [];
  for (const item of [...left, ...cgroups, ...repos]) soak.problems.push(`at the end: ${item}`);
  for (const file of ownOrphans) soak.problems.push(`at the end: orphan file ${file}`);
  for (const lost of soak.lostCurrent) soak.problems.push(`lost current package ${lost} (its record or its storage file says the file is gone)`);
  for (const p of doc.report?.problems ?? []) soak.problems.push(`doctor: ${p.check} ${p.kind}: ${p.message}`);
  if (!doc.report) soak.problems.push(`doctor: ${doc.text}`);
  const healthy = doc.report !== null && doc.report.healthy && doc.exitCode === 0;
  if (doc.report && doc.report.healthy !== (doc.exitCode === 0)) soak.problems.push(`doctor: healthy ${doc.report.healthy} but exit code ${doc.exitCode}`);
  const count = (prefix: string) => left.filter((item) => item.startsWith(prefix)).length;
  const orphans = Math.max(stray.length, ownOrphans.length);
  const parts = [
    `mounts ${count('mount ')}`,
    `processes ${count('process ')}`,
    `temp dirs ${count('temp dir ')}`,
    `cgroups ${cgroups.length}`,
    `orphan files ${orphans}`,
    `lost current packages ${soak.lostCurrent.size}`,
    `broken repos ${repos.length}`,
    doc.report ? `doctor ${healthy ? 'healthy' : `unhealthy (${doc.report.problems.length} problems)`}` : 'doctor unavailable',
  ];
  const bad = left.length + cgroups.length + orphans + soak.lostCurrent.size + repos.length > 0 || !healthy;
  return { text: parts.join(', '), bad };
}

/** Runs the soak; returns the process's exit code. */
async function main(): Promise<number> {
  const { values } = parseArgs({ options: { builds: { type: 'string', default: '100' }, seed: { type: 'string' }, keep: { type: 'boolean', default: false } } });
  const total = Number(values.builds);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isInteger(total) || total < 1 || !Number.isInteger(seed)) throw new Error('usage: soak.ts [--builds N] [--seed S] [--keep]');
  const started = performance.now();
  console.log(`soak: ${total} builds, seed ${seed} (repeat with --seed ${seed})`);
  const plans = makePlans(total, prng(seed));
  const key = await makeKey('soak');
  const world = makeWorld();
  const server = new Server(world, join(world.dir, 'server.log'));
  const soak: Soak = { world, server, key, apps: new Map(), durations: [], problems: [], counts: { ok: 0, failed: 0, cancelled: 0, killed: 0 }, notStarted: 0, lostCurrent: new Set() };
  let summary = '';
  let done = 0;
  // `on`, not `once`: execa's exit hook re-raises a signal that no other listener handles, which would end the soak before its clean-up.
  let cleaning: Promise<void> | null = null;
  const cleanUpOnce = () => (cleaning ??= cleanUp(soak, values.keep));
  const onSignal = () => {
    console.log('soak: interrupted; stopping the server and removing the world');
    void cleanUpOnce().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    await addAdmin(soak);
    await server.start();
    await makeApps(soak);
    for (const plan of plans) {
      const seen = soak.problems.length;
      console.log(await runOne(soak, plan, total));
      done++;
      for (const problem of soak.problems.slice(seen)) console.log(`  ! ${problem}`);
    }
    const stopped = await server.stop();
    if (stopped) soak.problems.push(`final stop: ${stopped}`);
    for (const line of suspiciousLogLines(server.logFile)) soak.problems.push(`server log: ${line}`);
    const final = await finalChecks(soak);
    const { ok, failed, cancelled, killed } = soak.counts;
    const unexpected = total - ok - failed - cancelled - killed;
    const seconds = Math.round((performance.now() - started) / 1000);
    summary = `soak: ${total} builds (${ok} ok, ${failed} failed, ${cancelled} cancelled, ${killed} killed, ${unexpected} unexpected; ${soak.notStarted} interrupted before their build started) in ${seconds} s, seed ${seed}: ${final.text}`;
    if (final.bad) soak.problems.push('the final counts are not all 0 or the doctor is unhealthy');
  } catch (error) {
    soak.problems.push(`aborted: ${(error as Error).stack ?? String(error)}`);
    console.log(`server log, last lines:\n${tail(server.logFile, 20)}`);
    summary = `soak: ABORTED after ${done} of ${total} builds in ${Math.round((performance.now() - started) / 1000)} s, seed ${seed}: ${(error as Error).message.split('\n')[0]}`;
  } finally {
    await cleanUpOnce();
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
  if (soak.problems.length > 0) {
    console.log(`\n${soak.problems.length} problems:`);
    for (const problem of soak.problems) console.log(`  - ${problem}`);
  }
  console.log(summary);
  return soak.problems.length > 0 ? 1 : 0;
}

/**
 * Stops the server (SIGTERM: its builds are cancelled and cleaned up); when
 * mounts remain (it was killed mid-build), one more start sweeps them; then
 * removes the world and its cgroup parent folders, unless `keep`.
 */
async function cleanUp(soak: Soak, keep: boolean | undefined): Promise<void> {
  const { server, world } = soak;
  try {
    await server.stop();
    if (leftovers(world, undefined).some((item) => item.startsWith('mount '))) {
      await server.start();
      await server.stop();
    }
  } catch (error) {
    console.log(`soak: cleaning up: ${(error as Error).message}`);
    await server.kill();
  }
  if (keep) console.log(`soak: world kept in ${world.dir} (server log: ${server.logFile})`);
  else {
    try {
      world.remove();
    } catch (error) {
      console.log(`soak: could not remove ${world.dir}: ${(error as Error).message}`);
    }
  }
}

/** The last `count` lines of a file (empty when it is gone). */
function tail(file: string, count: number): string {
  return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-count).join('\n') : '';
}

/** Lines of the server's log that say something went wrong outside a build's own output. */
function suspiciousLogLines(logFile: string): string[] {
  const pattern = /could not|retention of|uncaught|unhandled|TypeError|ReferenceError|EBUSY|ENOTEMPTY/i;
  return readFileSync(logFile, 'utf8').split('\n').filter((line) => pattern.test(line));
}

process.exitCode = await main();
