/**
 * apps.reject_failed_builds: the build runs from pre-receive on the pushed
 * objects, so a failed build rejects the push (the ref does not move) and a
 * good one moves it. The real server, real git over SSH and HTTP, fixture
 * image builds.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { type KeyPair, TestServer, makeKey } from './helpers/server.ts';
import { PROJECT, type PackageJson, World, metadata } from './helpers/world.ts';
import { parseRequest } from '../src/server/hook-session.ts';

const GOOD = { '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { after: 'echo built-before-update > marker' } } }) };
const BAD = { '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'echo about-to-fail; exit 1' } } }) };
const SLOW = { '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'echo slow-build; sleep 3' } } }) };
/** Its output line, not the command line that the log shows first. */
const SLOW_OUTPUT = /^remote: {8}slow-build\s*$/m;

type Git = (...args: string[]) => Promise<{ exitCode?: number; all?: unknown; stdout?: unknown }>;

/** A client working copy in the world, with `git` run in it as `key`'s owner. */
async function client(world: World, server: TestServer, name: string, key: KeyPair): Promise<{ dir: string; git: Git }> {
  const dir = join(world.dir, 'clients', name);
  mkdirSync(dir, { recursive: true });
  const env = server.clientEnv(key);
  const git: Git = (...args) => execa('git', args, { cwd: dir, env, reject: false, all: true });
  await git('init', '-q', '-b', 'main');
  return { dir, git };
}

/** Writes `files` into the client and commits them; returns the new sha. */
async function commit(client: { dir: string; git: Git }, files: Record<string, string>, message: string): Promise<string> {
  for (const [path, content] of Object.entries(files)) writeFileSync(join(client.dir, path), content);
  await client.git('add', '-A');
  await client.git('commit', '-q', '--allow-empty', '-m', message);
  return String((await client.git('rev-parse', 'HEAD')).stdout).trim();
}

/** Where `ref` of the app's repo on the server points, or null. */
async function serverRef(world: World, app: string, ref = 'refs/heads/main'): Promise<string | null> {
  const result = await execa('git', ['--git-dir', join(world.dir, 'repos', `${app}.git`), 'rev-parse', '--verify', '--quiet', ref], { reject: false });
  return result.exitCode === 0 ? String(result.stdout).trim() : null;
}

/** The lines the server sent to the pusher ("remote: " taken off). */
const remoteLines = (output: unknown): string[] =>
  String(output)
    .split('\n')
    .filter((line) => line.startsWith('remote: '))
    .map((line) => line.slice('remote: '.length).trimEnd());

/** The push sessions' folder holds the spare session only: no temporary repo or verdict is left. */
function onlySpareSession(world: World): void {
  const hooks = join(world.dir, 'state', 'hooks');
  const sessions = readdirSync(hooks);
  expect(sessions.length, sessions.join(' ')).to.be.at.most(1);
  for (const session of sessions) expect(readdirSync(join(hooks, session)).sort()).to.deep.equal(['in', 'out']);
}

describe('pre-receive and update shims', () => {
  const A = 'a'.repeat(40);
  const B = 'b'.repeat(40);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-shims-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const shim = (name: string, env: Record<string, string>, args: string[] = [], input = '') =>
    execa(join(PROJECT, 'hooks', name), args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, extendEnv: false, input, reject: false });

  it('pre-receive does nothing unless the server builds the push there, and takes nothing once its session is gone', async () => {
    await execa('mkfifo', ['--', join(dir, 'in'), join(dir, 'out')]);
    const envs: Record<string, string>[] = [{}, { UPAAS_HOOK_DIR: dir }];
    for (const env of envs) {
      const result = await shim('pre-receive', env, [], `${A} ${B} refs/heads/main\n`);
      expect([result.exitCode, String(result.stdout)]).to.deep.equal([0, '']);
    }
    const gone = await shim('pre-receive', { UPAAS_HOOK_DIR: join(dir, 'gone') }, [], `${A} ${B} refs/heads/main\n`);
    expect([gone.exitCode, String(gone.stdout)]).to.deep.equal([1, '!     system error: the push ended on the server before it was taken; push again']);
  });

  it('update refuses only the ref the verdict names, and every ref once the session is gone', async () => {
    const update = (ref: string, session = dir) => shim('update', { UPAAS_HOOK_DIR: session }, [ref, A, B]).then((result) => result.exitCode);
    expect(await update('refs/heads/main'), 'no verdict, built after the refs move').to.equal(0);
    writeFileSync(join(dir, 'pre-receive'), '');
    expect(await update('refs/heads/main'), 'no verdict, built before the refs move').to.equal(1);
    writeFileSync(join(dir, 'verdict'), 'garbage\n');
    expect(await update('refs/heads/feature'), 'no readable verdict').to.equal(1);
    writeFileSync(join(dir, 'verdict'), 'refuse refs/heads/main\n');
    expect(await update('refs/heads/main')).to.equal(1);
    expect(await update('refs/heads/feature')).to.equal(0);
    writeFileSync(join(dir, 'verdict'), 'accept\n');
    expect(await update('refs/heads/main')).to.equal(0);
    expect(await update('refs/heads/feature', join(dir, 'gone'))).to.equal(1);
    expect((await shim('update', {}, ['refs/heads/main', A, B])).exitCode, 'outside the server').to.equal(0);
  });

  it('the server takes only the quarantine folder name, as git makes it', () => {
    const request = parseRequest(`hook pre-receive\nquarantine tmp_objdir-incoming-Ab12Cd\nref ${A} ${B} refs/heads/main\n`);
    expect(request).to.deep.include({ hook: 'pre-receive', quarantine: 'tmp_objdir-incoming-Ab12Cd' });
    for (const bad of ['../../etc', 'tmp_objdir-incoming-../../x', '/tmp/tmp_objdir-incoming-Ab12Cd', 'tmp_objdir-incoming-Ab12Cd\nquarantine tmp_objdir-incoming-Zz99Zz']) {
      expect(() => parseRequest(`quarantine ${bad}\n`), bad).to.throw('unexpected line');
    }
  });
});

/** A failed build refuses the push, a good one moves the ref; the same over either transport. */
function rejectScenarios(transport: 'ssh' | 'http'): void {
  describe(`reject_failed_builds over ${transport.toUpperCase()}`, function () {
    this.timeout(180_000);
    let world: World;
    let server: TestServer;
    let admin: KeyPair;
    let token: string;

    before(async () => {
      admin = await makeKey('admin');
    });

    beforeEach(async () => {
      world = new World({ apps: { reject_failed_builds: true } });
      expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
      token = (await world.cli('tokens', 'create', '--user', 'admin')).stdout.split('\n').pop() as string;
      expect((await world.cli('repos', 'create', 'web')).exitCode).to.equal(0);
      server = new TestServer(world);
      await server.start();
    });

    afterEach(async () => {
      expect(await server.tearDown()).to.deep.equal([]);
    });

    const remote = (app: string) => (transport === 'ssh' ? server.url(app) : server.httpUrl(app, 'admin', token));

    it('a failed first build refuses the push: exit code, the build output and one failure line; main never appears', async () => {
      const dev = await client(world, server, 'dev', admin);
      await commit(dev, BAD, 'broken');
      const push = await dev.git('push', remote('web'), 'main');
      expect(push.exitCode, String(push.all)).to.not.equal(0);
      const lines = remoteLines(push.all);
      expect(lines, String(push.all)).to.include('-----> main moves only if this build succeeds (reject_failed_builds)');
      expect(lines.some((line) => line.includes('about-to-fail')), 'the build output is shown').to.equal(true);
      const failures = lines.filter((line) => line.startsWith('!     '));
      expect(failures, String(push.all)).to.have.length(1);
      expect(failures[0]).to.match(/^!     user error: /);
      expect(String(push.all)).to.include('[remote rejected] main -> main');
      expect(await serverRef(world, 'web')).to.equal(null);
      expect(await world.packages('web')).to.deep.equal([]);
      onlySpareSession(world);
    });

    it('a good build moves the ref and its package becomes current; a later failed one leaves both, but not a branch pushed with it', async () => {
      const dev = await client(world, server, 'dev', admin);
      const good = await commit(dev, GOOD, 'good');
      const first = await dev.git('push', remote('web'), 'main');
      expect(first.exitCode, String(first.all)).to.equal(0);
      expect(remoteLines(first.all).at(-1)).to.match(/^-----> Package [0-9a-f]{64} \(.*\) is now current for web$/);
      expect(await serverRef(world, 'web')).to.equal(good);
      let packages: PackageJson[] = await world.packages('web');
      expect(packages.map((p) => [p.revision, p.current])).to.deep.equal([[good, true]]);
      const unpacked = await world.unpack('web', packages[0] as PackageJson);
      expect(readdirSync(join(unpacked, 'home/app'))).to.include('marker');

      const bad = await commit(dev, BAD, 'broken');
      const second = await dev.git('push', remote('web'), 'main', 'main:feature');
      expect(second.exitCode, String(second.all)).to.not.equal(0);
      expect(remoteLines(second.all).filter((line) => line.startsWith('!     '))).to.have.length(1);
      expect(String(second.all)).to.include('[remote rejected] main -> main');
      expect(await serverRef(world, 'web'), 'main stays').to.equal(good);
      expect(await serverRef(world, 'web', 'refs/heads/feature'), 'another branch is never blocked').to.equal(bad);
      packages = await world.packages('web');
      expect(packages.map((p) => [p.revision, p.current])).to.deep.equal([[good, true]]);

      // Fixed, and asked fresh: push options work before the ref moves too.
      const fixed = await commit(dev, GOOD, 'fixed');
      const third = await dev.git('push', '-o', 'fresh', remote('web'), 'main');
      expect(third.exitCode, String(third.all)).to.equal(0);
      expect(remoteLines(third.all).some((line) => /^-----> Build \d+ of web \(fresh\)$/.test(line)), String(third.all)).to.equal(true);
      expect(await serverRef(world, 'web')).to.equal(fixed);
      packages = await world.packages('web');
      expect(packages[0]).to.include({ revision: fixed, current: true, fresh: true });
      expect(packages[0]?.changelog.map((entry) => entry.subject)).to.deep.equal(['fixed', 'broken']);

      // Deleting the deploy branch builds nothing (and git itself refuses to delete the repo's HEAD).
      const deleted = await dev.git('push', remote('web'), '--delete', 'main');
      const deleteLines = remoteLines(deleted.all);
      expect(deleteLines, String(deleted.all)).to.include('-----> main deleted: nothing to build (the current package stays)');
      expect(deleteLines.filter((line) => /^(-----> Build |!     )/.test(line)), String(deleted.all)).to.deep.equal([]);
      expect(String(deleted.all)).to.include('deletion of the current branch prohibited');
      expect(await serverRef(world, 'web')).to.equal(fixed);
      expect((await world.packages('web')).map((p) => p.revision)).to.deep.equal([fixed, good]);
      onlySpareSession(world);
    });

    it('a push that goes away cancels its build: nothing becomes current, the ref stays', async () => {
      const dev = await client(world, server, 'dev', admin);
      await commit(dev, SLOW, 'slow');
      // In a process group of its own, which goes as a whole (as on Ctrl-C): git, and its ssh or git-remote-http.
      const push = execa('git', ['push', remote('web'), 'main'], { cwd: dev.dir, env: server.clientEnv(admin), reject: false, all: true, detached: true });
      let seenOutput = '';
      await new Promise<void>((resolve, reject) => {
        push.all?.on('data', (chunk: Buffer) => {
          seenOutput += String(chunk);
          if (SLOW_OUTPUT.test(seenOutput)) resolve();
        });
        void push.then(() => reject(new Error(`the push ended before its build ran: ${seenOutput}`)));
      });
      process.kill(-(push.pid as number), 'SIGKILL');
      await push;
      const seen = Date.now();
      let builds = '';
      while ((builds = (await world.cli('builds', 'web')).stdout).includes('running') || builds.includes('no builds')) {
        if (Date.now() - seen > 30_000) throw new Error(`the build never ended: ${builds}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(builds).to.include('failed: system error: the build was cancelled');
      expect(await serverRef(world, 'web')).to.equal(null);
      expect(await world.packages('web')).to.deep.equal([]);
    });

    it('a second push waits for the running build and is refused when the first one moved the branch meanwhile', async () => {
      const ann = await client(world, server, 'ann', admin);
      const bob = await client(world, server, 'bob', admin);
      const base = await commit(ann, GOOD, 'base');
      expect((await ann.git('push', remote('web'), 'main')).exitCode).to.equal(0);
      await bob.git('pull', '-q', remote('web'), 'main');
      const slow = await commit(ann, SLOW, 'slow');
      const rival = await commit(bob, { 'bob.txt': 'bob' }, 'rival');
      const first = ann.git('push', remote('web'), 'main');
      const seen = Date.now();
      while (!(await world.cli('builds', 'web')).stdout.includes('running')) {
        if (Date.now() - seen > 30_000) throw new Error('the first build never started');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const second = await bob.git('push', remote('web'), 'main');
      const done = await first;
      expect(done.exitCode, String(done.all)).to.equal(0);
      expect(second.exitCode, String(second.all)).to.not.equal(0);
      const lines = remoteLines(second.all);
      expect(lines.some((line) => /^-----> waiting: build \d+ of web is running$/.test(line)), String(second.all)).to.equal(true);
      expect(lines.filter((line) => line.startsWith('!     '))).to.deep.equal([
        '!     user error: main moved while this push waited for its build (another push); pull and push again',
      ]);
      expect(await serverRef(world, 'web')).to.equal(slow);
      expect((await world.packages('web')).map((p) => [p.revision, p.current])).to.deep.equal([
        [slow, true],
        [base, false],
      ]);
      expect(rival).to.not.equal(slow);
    });
  });
}

rejectScenarios('ssh');
rejectScenarios('http');

describe('reject_failed_builds for one app (apps.per_app)', function () {
  this.timeout(180_000);
  let world: World;
  let server: TestServer;
  let admin: KeyPair;

  before(async () => {
    admin = await makeKey('admin');
    world = new World({ apps: { per_app: { strict: { reject_failed_builds: true } } } });
    expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    for (const app of ['strict', 'loose']) expect((await world.cli('repos', 'create', app)).exitCode).to.equal(0);
    server = new TestServer(world);
    await server.start();
  });

  after(async () => {
    expect(await server.tearDown()).to.deep.equal([]);
  });

  it('refuses the failed push of that app only; the other app takes its push and fails its build after', async () => {
    for (const app of ['strict', 'loose']) {
      const dev = await client(world, server, app, admin);
      const good = await commit(dev, GOOD, 'good');
      expect((await dev.git('push', server.url(app), 'main')).exitCode).to.equal(0);
      const bad = await commit(dev, BAD, 'broken');
      const push = await dev.git('push', server.url(app), 'main');
      const failures = remoteLines(push.all).filter((line) => line.startsWith('!     '));
      expect(failures, String(push.all)).to.have.length(1);
      if (app === 'strict') {
        expect(push.exitCode, String(push.all)).to.not.equal(0);
        expect(await serverRef(world, app)).to.equal(good);
      } else {
        expect(push.exitCode, String(push.all)).to.equal(0);
        expect(remoteLines(push.all)).to.not.include('-----> main moves only if this build succeeds (reject_failed_builds)');
        expect(await serverRef(world, app)).to.equal(bad);
      }
      expect((await world.packages(app)).map((p) => [p.revision, p.current])).to.deep.equal([[good, true]]);
    }
  });
});
