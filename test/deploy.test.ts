/**
 * Deploy commands (apps.deploy.commands) through the real CLI and a real
 * push on the fixture image: what they are given (the UPAAS_* variables, a
 * verified copy of the package, the config vars as an env file), that they
 * run after a build and after a rollback, that their failure marks the
 * release failed and puts the package before back, and that nothing of them
 * is left.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { findLeftovers, sweepInterrupted } from '../src/builder/sweep.ts';
import { parseConfig } from '../src/config/config.ts';
import { envFileText } from '../src/core/deploy.ts';
import { State } from '../src/state/state.ts';
import { TestServer, makeKey } from './helpers/server.ts';
import { type AppRepo, PROJECT, type PackageJson, World, metadata } from './helpers/world.ts';

const STATIC = { '.upaas.yml': metadata({ interpreter: { type: 'static' } }) };

/** Records what a deploy command is given into $OUT/N/ (N: the release). */
const RECORD = [
  'mkdir -p "$OUT/$UPAAS_RELEASE"',
  'env | grep -E "^UPAAS_" | sort > "$OUT/$UPAAS_RELEASE/env"',
  'cp "$UPAAS_CONFIG_FILE" "$OUT/$UPAAS_RELEASE/config.env"',
  'stat -c %a "$UPAAS_CONFIG_FILE" > "$OUT/$UPAAS_RELEASE/mode"',
  'sha256sum "$UPAAS_PACKAGE_FILE" | cut -d" " -f1 > "$OUT/$UPAAS_RELEASE/sum"',
  'echo "deploying $UPAAS_APP v$UPAAS_RELEASE"',
].join('\n');

interface ReleaseJson {
  version: number;
  package: string;
  kind: string;
  status: 'ok' | 'failed';
  failure: string | null;
}

describe('deploy commands (fixture image)', function () {
  this.timeout(300_000);
  let world: World;
  let app: AppRepo;
  let out: string;

  beforeEach(async () => {
    world = new World({ builder: { min_free: 0 } });
    out = join(world.dir, 'deployed');
    mkdirSync(out);
    world.update({ apps: { deploy: { commands: [RECORD], env: { OUT: out } } } });
    app = await world.app('web');
  });

  afterEach(() => {
    const leftovers = world.leftovers();
    world.remove();
    expect(leftovers, 'left behind').to.deep.equal([]);
  });

  const build = () => world.cli('build', 'web');
  const releases = async (): Promise<ReleaseJson[]> => JSON.parse((await world.cli('releases', 'web', '--json')).stdout) as ReleaseJson[];
  const current = async (): Promise<PackageJson | undefined> => (await world.packages('web')).find((p) => p.current);
  const envOf = (release: number): Record<string, string> =>
    Object.fromEntries(
      readFileSync(join(out, String(release), 'env'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );

  it('runs after a build with the documented variables, a verified package copy and the config vars as a 0600 env file, then removes them', async () => {
    expect((await world.cli('config', 'set', 'web', 'PLAIN=a b=c', 'MULTI=line one\nline "two" $x')).exitCode).to.equal(0);
    await app.commit(STATIC);
    const result = await build();
    expect(result.exitCode, result.stdout + result.stderr).to.equal(0);
    expect(result.stdout).to.match(/^-----> Deploying release v1 of web \(package [0-9a-f]{12}\)$/m);
    expect(result.stdout).to.match(/^ {7}deploying web v1$/m);
    // The deploy comes before the last line, which names the package.
    expect(result.lines.filter(Boolean).pop()).to.match(/^-----> Package [0-9a-f]{64} .* is now current for web$/);
    const pkg = (await current()) as PackageJson;
    const env = envOf(1);
    expect(env).to.include({
      UPAAS_APP: 'web',
      UPAAS_PACKAGE_ID: pkg.id,
      UPAAS_REVISION: pkg.revision,
      UPAAS_RELEASE: '1',
      UPAAS_RELEASE_KIND: 'build',
      UPAAS_PREVIOUS_PACKAGE_ID: '',
    });
    expect(readFileSync(join(out, '1', 'sum'), 'utf8').trim(), 'the copy is the package').to.equal(pkg.id);
    expect(readFileSync(join(out, '1', 'mode'), 'utf8').trim()).to.equal('600');
    expect(readFileSync(join(out, '1', 'config.env'), 'utf8')).to.equal('MULTI="line one\nline \\"two\\" \\$x"\nPLAIN=a b=c\n');
    expect(existsSync(env.UPAAS_CONFIG_FILE as string), 'the env file is removed').to.equal(false);
    expect(existsSync(env.UPAAS_PACKAGE_FILE as string), 'the package copy is removed').to.equal(false);
    expect((await releases())[0]).to.include({ version: 1, status: 'ok', failure: null });
  });

  it('a failing deploy marks the release failed and makes the package before current again; a rollback deploys too', async () => {
    await app.commit(STATIC);
    expect((await build()).exitCode).to.equal(0);
    const first = (await current()) as PackageJson;

    world.update({ apps: { deploy: { commands: [RECORD, 'echo health check failed >&2; exit 3'] } } });
    await app.commit({ 'n.txt': '2' });
    const failed = await build();
    expect(failed.exitCode, failed.stdout).to.equal(2);
    const last = failed.lines.filter(Boolean).pop() as string;
    expect(last).to.match(/^! {5}deploy failed: deploy command 2 of 2 exited with status 3; release v2 is marked failed and package [0-9a-f]{12} is current again \(system error\)$/);
    expect(last).to.include(first.id.slice(0, 12));
    expect(failed.stdout).to.match(/^ {7}health check failed$/m);
    expect((await current())?.id, 'the package before is current').to.equal(first.id);
    const second = (await world.packages('web')).find((p) => p.id !== first.id) as PackageJson;
    expect(envOf(2)).to.include({ UPAAS_PACKAGE_ID: second.id, UPAAS_PREVIOUS_PACKAGE_ID: first.id, UPAAS_RELEASE: '2' });
    const [v2] = await releases();
    expect(v2).to.include({ version: 2, package: second.id, status: 'failed' });
    expect(v2?.failure).to.match(/exited with status 3/);
    expect((await world.cli('releases', 'web')).stdout).to.match(/^v2 .* deploy failed: /m);
    expect(JSON.parse((await world.cli('builds', 'web', '--json')).stdout)[0]).to.include({ status: 'failed', errorKind: 'system' });

    // The next build starts from the package that is current again.
    world.update({ apps: { deploy: { commands: [RECORD] } } });
    await app.commit({ 'n.txt': '3' });
    expect((await build()).exitCode).to.equal(0);
    const third = (await current()) as PackageJson;
    expect(third.parent).to.equal(first.id);

    // A rollback runs the deploy commands as well, with its own release.
    const rolled = await world.cli('rollback', 'web', second.id.slice(0, 8));
    expect(rolled.exitCode, rolled.stderr).to.equal(0);
    expect(rolled.stdout).to.match(/^-----> Deploying release v4 of web/m);
    expect(rolled.stdout).to.match(/^ {7}deploying web v4$/m);
    expect(envOf(4)).to.include({ UPAAS_RELEASE_KIND: 'rollback', UPAAS_PACKAGE_ID: second.id, UPAAS_PREVIOUS_PACKAGE_ID: third.id });
    expect(readFileSync(join(out, '4', 'sum'), 'utf8').trim()).to.equal(second.id);

    // A rollback whose deploy fails: refused, the package before it current again.
    world.update({ apps: { deploy: { commands: ['exit 9'] } } });
    const refused = await world.cli('rollback', 'web', first.id);
    expect(refused.exitCode).to.equal(1);
    // Locally the server log (with the command's text) shares stderr; the refusal is the last line.
    expect(refused.stderr.trim().split('\n').pop()).to.equal(
      `upaas rollback: deploy failed: deploy command 1 of 1 exited with status 9; release v5 is marked failed and package ${second.id.slice(0, 12)} is current again`,
    );
    expect((await current())?.id).to.equal(second.id);
  });

  it('the shipped example unpacks each package on this host and swaps it in atomically, and swaps back when its restart fails', async () => {
    const srv = join(world.dir, 'srv');
    const script = `sh ${join(PROJECT, 'examples/deploy/unpack-and-swap.sh')}`;
    world.update({ apps: { deploy: { commands: [script], env: { DEPLOY_ROOT: srv, DEPLOY_KEEP: '2' } } } });
    expect((await world.cli('config', 'set', 'web', 'SECRET=s3cret')).exitCode).to.equal(0);
    const ids: string[] = [];
    // A hostile app leaves a setuid root shell in its tree: it must not land on the host as one.
    const SETUID = { '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { after: 'mkdir -p /usr/local/bin && cp /bin/sh /usr/local/bin/rootsh && chmod 4755 /usr/local/bin/rootsh' } } }) };
    for (const n of ['1', '2', '3']) {
      await app.commit({ ...SETUID, 'n.txt': n });
      const result = await build();
      expect(result.exitCode, result.stdout).to.equal(0);
      ids.push(((await current()) as PackageJson).id);
      expect(readlinkSync(join(srv, 'current'))).to.equal(`releases/${ids.at(-1)}`);
      expect(readFileSync(join(srv, 'current/root/home/app/n.txt'), 'utf8')).to.equal(n);
    }
    expect(readFileSync(join(srv, 'current/env'), 'utf8')).to.equal('SECRET=s3cret\n');
    expect(statSync(join(srv, 'current/env')).mode & 0o777).to.equal(0o600);
    expect(readdirSync(join(srv, 'releases')).sort(), 'DEPLOY_KEEP releases are kept').to.deep.equal(ids.slice(1).sort());
    expect(statSync(join(srv, 'releases')).mode & 0o777, 'root only').to.equal(0o700);
    const rootsh = statSync(join(srv, 'current/root/usr/local/bin/rootsh'));
    expect([rootsh.uid, rootsh.mode & 0o7777], 'the setuid bit is stripped').to.deep.equal([0, 0o755]);
    const stored = statSync(join(await world.unpack('web', (await current()) as PackageJson), 'usr/local/bin/rootsh'));
    expect(stored.mode & 0o7777, 'the package itself has it (the test proves something)').to.equal(0o4755);

    // A rollback swaps the kept release back in.
    expect((await world.cli('rollback', 'web', ids[1] as string)).exitCode).to.equal(0);
    expect(readlinkSync(join(srv, 'current'))).to.equal(`releases/${ids[1]}`);

    // A restart that fails: the script swaps back, upaas makes the package before current again.
    world.update({ apps: { deploy: { env: { DEPLOY_RESTART: 'test "$UPAAS_RELEASE" != 5' } } } });
    await app.commit({ 'n.txt': '4' });
    const failed = await build();
    expect(failed.exitCode, failed.stdout).to.equal(2);
    expect(failed.stdout).to.match(/the restart failed; going back to releases\/[0-9a-f]{64}/);
    expect(((await current()) as PackageJson).id).to.equal(ids[1]);
    expect(readlinkSync(join(srv, 'current'))).to.equal(`releases/${ids[1]}`);
    expect(readdirSync(srv).sort(), 'no temporary link is left').to.deep.equal(['current', 'releases']);
  });

  it("a rollback's deploy runs to its end when its caller goes away, so the host and the server agree", async () => {
    await app.commit(STATIC);
    expect((await build()).exitCode).to.equal(0);
    const first = (await current()) as PackageJson;
    await app.commit({ 'n.txt': '2' });
    expect((await build()).exitCode).to.equal(0);
    world.update({ apps: { deploy: { commands: [`${RECORD}\nsleep 2; echo deployed to the end`] } } });
    const rollback = execa('node', [join(PROJECT, 'bin/upaas.js'), '-c', world.configFile, 'rollback', 'web', first.id], { cwd: world.dir, reject: false, all: true });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    rollback.kill('SIGINT');
    const result = await rollback;
    expect(result.exitCode, String(result.all)).to.equal(0);
    expect(String(result.all)).to.include('deployed to the end');
    expect((await current())?.id).to.equal(first.id);
    expect((await releases())[0]).to.include({ version: 3, status: 'ok' });
  });

  it('apps.deploy.timelimit stops a deploy that takes too long', async () => {
    world.update({ apps: { deploy: { commands: ['sleep 60'], timelimit: 2 } } });
    await app.commit(STATIC);
    const started = Date.now();
    const result = await build();
    expect(Date.now() - started).to.be.below(40_000);
    expect(result.exitCode).to.equal(2);
    expect(result.lines.filter(Boolean).pop()).to.match(/deploy failed: deploy command 1 of 1 was stopped: the deploy took longer than apps.deploy.timelimit \(2 s\); release v1 is marked failed and web has no current package again/);
    expect(await current()).to.equal(undefined);
  });

  it('streams the deploy to the pusher, and per-app settings override the global ones', async () => {
    const admin = await makeKey('admin');
    expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    world.update({ apps: { per_app: { web: { deploy: { commands: ['echo "per-app deploy of $UPAAS_APP"; exit 4'] } } } } });
    const server = new TestServer(world);
    await server.start();
    try {
      // Committed in the working copy only: the push to the server brings it.
      writeFileSync(join(app.work, '.upaas.yml'), STATIC['.upaas.yml']);
      const env = server.clientEnv(admin);
      await execa('git', ['add', '-A'], { cwd: app.work, env });
      await execa('git', ['commit', '-q', '-m', 'deploy me'], { cwd: app.work, env });
      const push = await execa('git', ['push', server.url('web'), 'main'], { cwd: app.work, env, reject: false, all: true });
      const lines = String(push.all)
        .split('\n')
        .filter((line) => line.startsWith('remote: '))
        .map((line) => line.slice('remote: '.length).trimEnd());
      expect(lines).to.include('       per-app deploy of web');
      expect(lines.filter(Boolean).pop()).to.match(/^! {5}deploy failed: deploy command 1 of 1 exited with status 4; release v1 is marked failed and web has no current package again \(system error\)$/);
    } finally {
      await server.stop();
    }
  });
});

describe('env files of deploy commands', () => {
  it('writes plain values as they are and quotes every other', () => {
    expect(envFileText({ B: 'x y', C: 'postgres://u:p@db/app?x=1' })).to.equal('B=x y\nC=postgres://u:p@db/app?x=1\n');
    // What systemd would read otherwise: an opening quote, a backslash, outer spaces.
    expect(envFileText({ A: '"quoted" \\ $HOME', D: ' padded ', E: "it's" })).to.equal('A="\\"quoted\\" \\\\ \\$HOME"\nD=" padded "\nE="it\'s"\n');
    expect(envFileText({ K: 'a\nb"c\\d$e`f' })).to.equal('K="a\nb\\"c\\\\d\\$e\\`f"\n');
  });

  it('is read back exactly by a parser of the systemd rules for double quotes', () => {
    const value = 'first line\nsecond "line" with \\ and $VAR';
    const text = envFileText({ V: value });
    const quoted = /^V="([\s\S]*)"\n$/.exec(text)?.[1] as string;
    expect(quoted.replace(/\\(["\\$`])/g, '$1')).to.equal(value);
  });
});

describe('what interrupted deploys and runs leave', () => {
  it('is found and removed by the sweep when its process is gone, and left alone while it lives', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'upaas-deploy-sweep-'));
    try {
      const config = parseConfig({ paths: { state: join(dir, 'state'), workdir: join(dir, 'work') } }, null);
      const state = State.open(config.paths.state);
      // A PID that is gone (a short-lived child's), this test's parent (alive) and this process.
      const child = execa('true');
      await child;
      const gone = child.pid as number;
      const dead = join(config.paths.workdir, `_deploy-${gone}-web-2-abcdef`);
      const deadRun = join(config.paths.workdir, `_run-${gone}-web-2.abcdef`);
      const live = join(config.paths.workdir, `_deploy-${process.ppid}-web-AbC123`);
      const mine = join(config.paths.workdir, `_run-${process.pid}-web.AbC123`);
      for (const folder of [dead, deadRun, live, mine]) mkdirSync(join(folder, 'inside'), { recursive: true });
      const { others, workdirs } = await findLeftovers(config, () => new Set());
      expect(others.map((o) => [o.what, o.dir]).sort()).to.deep.equal([
        ['deploy', dead],
        ['run', deadRun],
      ]);
      expect(workdirs, 'not taken for a build folder').to.deep.equal([]);
      const lines: string[] = [];
      await sweepInterrupted(config, state, (line) => lines.push(line));
      expect(lines.sort()).to.deep.equal([`upaas: removed ${dead}, left by an interrupted deploy`, `upaas: removed ${deadRun}, left by an interrupted run`]);
      expect([dead, deadRun, live, mine].map((folder) => existsSync(folder))).to.deep.equal([false, false, true, true]);
      // A build of an app named like a run's folder stays a build's.
      const build = join(config.paths.workdir, 'run-999999-42-AbCdEf');
      mkdirSync(build);
      const whileLive = await findLeftovers(config, () => new Set([42]));
      expect([whileLive.others.length, whileLive.workdirs.length]).to.deep.equal([0, 0]);
      expect((await findLeftovers(config, () => new Set())).workdirs.map((w) => w.id)).to.deep.equal([42]);
      rmSync(build, { recursive: true });
      // At a server's start, what names its own PID is a predecessor's.
      await sweepInterrupted(config, state, () => undefined, true);
      expect([live, mine].map((folder) => existsSync(folder))).to.deep.equal([true, false]);
      state.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
