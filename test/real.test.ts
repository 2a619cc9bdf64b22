/**
 * Real tier: a Debian bookworm minbase image from real debootstrap (built once
 * and shared through test/.cache/real-storage), the bundled example app with
 * OS packages, actions and files; then an incremental and a fresh build.
 * Set UPAAS_SKIP_REAL=1 to skip it while iterating locally; CI runs it.
 */
import { cpSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseConfig } from '../src/config/config.ts';
import { loadYamlFile } from '../src/config/yaml.ts';
import { runInSandbox } from '../src/sandbox/sandbox.ts';
import { TestServer, makeKey } from './helpers/server.ts';
import { PROJECT, type AppRepo, type PackageJson, World, merge } from './helpers/world.ts';
import { execa } from 'execa';

const REAL_STORAGE = join(PROJECT, 'test/.cache/real-storage');

async function inChroot(root: string, argv: string[]): Promise<string> {
  const lines: string[] = [];
  const result = await runInSandbox(root, argv, {
    env: { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'safe.directory', GIT_CONFIG_VALUE_0: '*' },
    onLine: (line) => lines.push(line),
    timeoutSeconds: 60,
  });
  expect(result.ok, lines.join('\n')).to.equal(true);
  return lines.join('\n');
}

(process.env.UPAAS_SKIP_REAL ? describe.skip : describe)('real debootstrap image (example app)', function () {
  this.timeout(20 * 60_000);
  let world: World;
  let app: AppRepo;
  const timings: Record<string, number> = {};

  before(async () => {
    mkdirSync(REAL_STORAGE, { recursive: true });
    const shipped = loadYamlFile(join(PROJECT, 'upaas.yml')) as Record<string, unknown>;
    parseConfig(shipped, join(PROJECT, 'upaas.yml'));
    const { paths: _paths, ...rest } = shipped;
    world = new World({}, merge(rest, { storage: { settings: { dir: REAL_STORAGE } } }));
    app = await world.app('hello');
    cpSync(join(PROJECT, 'examples/hello'), app.work, { recursive: true });
  });

  after(() => {
    const leftovers = world.leftovers();
    world.remove();
    // Only the image is worth keeping between runs.
    rmSync(join(REAL_STORAGE, 'packages'), { recursive: true, force: true });
    expect(leftovers).to.deep.equal([]);
  });

  async function timedBuild(label: string, ...args: string[]) {
    const started = Date.now();
    const result = await world.cli('build', 'hello', ...args);
    timings[label] = Date.now() - started;
    expect(result.exitCode, result.stdout.split('\n').slice(-40).join('\n')).to.equal(0);
    return result;
  }

  let first: PackageJson;
  let second: PackageJson;

  it('builds the first package: OS package installed, actions run, files written, app at the revision', async () => {
    const revision = await app.commit({}, 'example app');
    const result = await timedBuild('first');
    expect(result.stdout).to.include('Installing OS packages: jq');
    [first] = (await world.packages('hello')) as [PackageJson];
    expect(first).to.include({ fresh: true, parent: null, revision, current: true });
    expect(first.interpreter).to.deep.equal({ type: 'python', version: '3.11' });

    const root = await world.unpack('hello', first);
    expect(await inChroot(root, ['git', '-C', '/home/app', 'rev-parse', 'HEAD'])).to.equal(revision);
    expect(await inChroot(root, ['dpkg', '-s', 'jq'])).to.match(/Status: install ok installed/);
    expect(await inChroot(root, ['python3', '--version'])).to.match(/^Python 3\.11/);
    expect(readFileSync(join(root, 'home/app/build-info.txt'), 'utf8')).to.match(/^Python 3\.11.*\nhello from upaas\n$/);
    expect(readFileSync(join(root, 'home/app/migrated.txt'), 'utf8')).to.equal(`${revision}\n`);
    expect(readFileSync(join(root, 'home/app/config/settings.json'), 'utf8')).to.include('hello from upaas');
    expect(await inChroot(root, ['stat', '-c', '%U', '/home/app/app.py'])).to.equal('www-data');
  });

  it('builds a second commit incrementally: parent recorded, faster, changelog kept', async () => {
    const revision = await app.commit({ 'VERSION': '2\n' }, 'second release');
    const result = await timedBuild('incremental');
    expect(result.stdout).to.include('Using the cached tree of current package');
    // The archive copies the frames of the ranges this build left alone from the package before.
    const [, copied] = /(\d+) of \d+ frames copied from the archive before/.exec(result.stdout) ?? [];
    expect(Number(copied), result.stdout).to.be.above(0);
    // jq is there already: no install, and no package lists fetched (no network).
    expect(result.stdout).to.include('installed already: jq');
    expect(result.stdout).not.to.include('apt-get update');
    [second] = (await world.packages('hello')) as [PackageJson];
    expect(second).to.include({ fresh: false, parent: first.id, revision, current: true });
    expect(second.changelog.map((c) => c.subject)).to.deep.equal(['second release']);
    expect(timings.incremental, JSON.stringify(timings)).to.be.below(timings.first as number);
    const root = await world.unpack('hello', second);
    expect(await inChroot(root, ['git', '-C', '/home/app', 'rev-parse', 'HEAD'])).to.equal(revision);
    expect(readFileSync(join(root, 'home/app/migrated.txt'), 'utf8').split('\n').filter(Boolean)).to.have.length(2);
    expect(await inChroot(root, ['dpkg', '-s', 'jq'])).to.match(/Status: install ok installed/);
  });

  it('--fresh builds from the system image again', async () => {
    const result = await timedBuild('fresh', '--fresh');
    expect(result.stdout).to.match(/-----> (Unpacking system image|Using the cached tree of the system image)/);
    expect(result.stdout).to.include('Installing interpreter python 3.11');
    const [fresh] = (await world.packages('hello')) as [PackageJson];
    expect(fresh).to.include({ fresh: true, parent: null, revision: second.revision, current: true });
    const root = await world.unpack('hello', fresh);
    expect(readFileSync(join(root, 'home/app/migrated.txt'), 'utf8').split('\n').filter(Boolean)).to.have.length(1);
    expect(await inChroot(root, ['dpkg', '-s', 'jq'])).to.match(/Status: install ok installed/);
  });

  it('a real push over SSH builds end to end (shared image)', async () => {
    const admin = await makeKey('admin');
    expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    const server = new TestServer(world);
    await server.start();
    try {
      expect((await server.ssh(admin, ['repos', 'create', 'pushed'])).exitCode).to.equal(0);
      const push = await execa('git', ['push', server.url('pushed'), 'HEAD:main'], { cwd: app.work, env: server.clientEnv(admin), reject: false, all: true });
      expect(push.exitCode, String(push.all).slice(-3000)).to.equal(0);
      const lines = String(push.all).split('\n');
      expect(lines.some((l) => l.startsWith('remote: -----> Installing OS packages: jq'))).to.equal(true);
      expect(lines.filter((l) => l.startsWith('remote: ')).pop()).to.match(/-----> Package [0-9a-f]{64} .* is now current for pushed/);
      const [pkg] = (await world.packages('pushed')) as [PackageJson];
      const root = await world.unpack('pushed', pkg);
      expect(await inChroot(root, ['dpkg', '-s', 'jq'])).to.match(/Status: install ok installed/);
      expect(readFileSync(join(root, 'home/app/migrated.txt'), 'utf8')).to.equal(`${pkg.revision}\n`);
    } finally {
      await server.stop();
    }
  });
});
