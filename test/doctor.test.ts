/**
 * The doctor, locally and over SSH, on a server with its own storage: healthy
 * after a build; a package file deleted by hand and a stray file added are
 * both named (exit 1), --fix removes the stray one; a build killed mid-way
 * leaves a stale record, a temp folder, a mount and cgroups that it reports
 * and --fix removes.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { execa } from 'execa';
import { type KeyPair, TestServer, makeKey } from './helpers/server.ts';
import { PROJECT, type PackageJson, World, metadata } from './helpers/world.ts';

interface Report {
  healthy: boolean;
  checks: { name: string; ok: boolean }[];
  problems: { check: string; kind: string; message: string }[];
  fixed: string[];
}

describe('doctor', function () {
  this.timeout(180_000);
  let world: World;
  let storage: string;

  beforeEach(async () => {
    storage = mkdtempSync(join(tmpdir(), 'upaas-doctor-storage-'));
    world = new World({ storage: { settings: { dir: storage } }, builder: { min_free: 0 } });
  });

  afterEach(() => {
    const leftovers = world.leftovers();
    world.remove();
    rmSync(storage, { recursive: true, force: true });
    expect(leftovers, 'left behind').to.deep.equal([]);
  });

  const doctor = async (...args: string[]) => {
    const result = await world.cli('doctor', '--json', ...args);
    return { exitCode: result.exitCode, report: JSON.parse(result.stdout) as Report };
  };

  it('is healthy after a build, then names a deleted package file and a stray file; --fix removes the stray one', async () => {
    const app = await world.app('web');
    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' } }) });
    expect((await world.cli('build', 'web')).exitCode).to.equal(0);
    await app.commit({ 'x.txt': 'x' });
    expect((await world.cli('build', 'web')).exitCode).to.equal(0);

    const healthy = await doctor('--deep');
    expect(healthy.report.problems).to.deep.equal([]);
    expect(healthy.exitCode).to.equal(0);
    expect(healthy.report.checks.map((c) => c.name)).to.deep.equal(['config', 'programs', 'state', 'builds', 'leftovers', 'packages', 'storage', 'tree cache', 'disk']);
    const text = await world.cli('doctor');
    expect(text.stdout).to.match(/^healthy: 9 checks passed/);
    // The tree cache's probe (an overlay over a layer in its folder) leaves nothing there.
    expect(readdirSync(join(world.dir, 'state/trees')).filter((name) => name.startsWith('_probe-'))).to.deep.equal([]);
    expect(text.stdout, text.stdout).to.match(/\ntree cache: 1 tree \(3 layers, [0-9.]+ MiB\); builder.cache keeps at most 8 trees and 20 GiB, each at most 16 layers deep$/);

    const [current, older] = (await world.packages('web')) as [PackageJson, PackageJson];
    unlinkSync(world.packageFile('web', older));
    // A stray file of this server's app (old enough to be no write in progress), one of an app it does not know, a new one.
    const hourAgo = new Date(Date.now() - 3600_000);
    writeFileSync(join(storage, 'packages/web/stray.tar.zst'), 'not a package');
    utimesSync(join(storage, 'packages/web/stray.tar.zst'), hourAgo, hourAgo);
    mkdirSync(join(storage, 'packages/ghost'), { recursive: true });
    writeFileSync(join(storage, 'packages/ghost/other.tar.zst'), 'whose?');
    utimesSync(join(storage, 'packages/ghost/other.tar.zst'), hourAgo, hourAgo);
    writeFileSync(join(storage, 'packages/web/new.tar.zst'), 'just written');
    const sick = await doctor();
    expect(sick.exitCode).to.equal(1);
    expect(sick.report.healthy).to.equal(false);
    expect(sick.report.problems.map((p) => p.kind).sort()).to.deep.equal(['missing-file', 'stray-file', 'stray-file', 'stray-file']);
    const messages = sick.report.problems.map((p) => p.message).join('\n');
    expect(messages).to.include(`package ${older.id.slice(0, 12)} of web: its file packages/web/${older.id}.tar.zst is missing`);
    expect(sick.report.problems.map((p) => p.message)).to.include('packages/web/stray.tar.zst (13 B, incomplete) is in storage, but no record names it');
    expect(messages).to.include('packages/ghost/other.tar.zst (6 B, incomplete) is in storage, but no record names it (--fix leaves it');
    expect(messages).to.include('packages/web/new.tar.zst (12 B, incomplete) is in storage, but no record names it (--fix leaves it');
    expect(messages).to.not.include(storage);
    const plain = await world.cli('doctor');
    expect(plain.exitCode).to.equal(1);
    expect(plain.lines.filter((l) => /^(missing-file|stray-file): /.test(l))).to.have.length(4);

    // A package changed in place (same size) is found by --deep only; one of another size always.
    const bytes = readFileSync(world.packageFile('web', current));
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    writeFileSync(world.packageFile('web', current), bytes);
    expect((await doctor()).report.problems.map((p) => p.kind)).to.not.include('hash-mismatch');
    const deep = await doctor('--deep');
    expect(deep.report.problems.find((p) => p.kind === 'hash-mismatch')?.message).to.match(
      new RegExp(`^package ${current.id.slice(0, 12)} of web \\(its current package\\): its file's SHA-256 is (unreadable|[0-9a-f]{64})`),
    );
    writeFileSync(world.packageFile('web', current), 'changed');
    expect((await doctor()).report.problems.map((p) => p.kind)).to.include('size-mismatch');

    const fixed = await doctor('--fix');
    expect(fixed.report.fixed).to.deep.equal(['removed packages/web/stray.tar.zst from storage (no record named it)']);
    expect(fixed.report.problems.map((p) => p.kind).sort()).to.deep.equal(['missing-file', 'size-mismatch', 'stray-file', 'stray-file']);
    expect(fixed.exitCode).to.equal(1);
  });

  it('reports what a killed build left (stale record, temp folder, mount, cgroup) and --fix removes it', async () => {
    const app = await world.app('slow');
    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'touch /tmp/started; sleep 60' } } }) });
    const child = execa('node', [join(PROJECT, 'bin/upaas.js'), '-c', world.configFile, 'build', 'slow'], { reject: false, cwd: world.dir });
    for (let i = 0; i < 300; i++) {
      const listed = await world.cli('builds', 'slow', '--json');
      const [running] = JSON.parse(listed.stdout || '[]') as { status: string }[];
      if (running?.status === 'running' && (await world.cli('log', 'slow', '--no-follow')).stdout.includes('sleep 60')) break;
      await sleep(100);
    }
    child.kill('SIGKILL');
    await child;
    await sleep(300);
    // And an old stray file of that app: deciding whether --fix may remove it must not change anything either.
    mkdirSync(join(storage, 'packages/slow'), { recursive: true });
    writeFileSync(join(storage, 'packages/slow/stray.tar.zst'), 'x');
    const hourAgo = new Date(Date.now() - 3600_000);
    utimesSync(join(storage, 'packages/slow/stray.tar.zst'), hourAgo, hourAgo);

    const sick = await doctor();
    expect(sick.exitCode).to.equal(1);
    expect(JSON.parse((await world.cli('builds', 'slow', '--json')).stdout)[0], 'a doctor without --fix changes nothing').to.include({ status: 'running' });
    const kinds = new Set(sick.report.problems.map((p) => p.kind));
    expect([...kinds].sort()).to.include.members(['leftover-cgroup', 'leftover-mount', 'leftover-workdir', 'stale-build']);
    expect(sick.report.problems.find((p) => p.kind === 'leftover-workdir')?.message).to.match(/^<workdir>\/slow-1-[A-Za-z0-9]{6} was left by build 1/);

    const fixed = await doctor('--fix');
    expect(fixed.report.problems).to.deep.equal([]);
    expect(fixed.exitCode).to.equal(0);
    expect(fixed.report.fixed.join('\n')).to.include('build 1 of slow was interrupted (its process is gone); marked failed');
    expect(fixed.report.fixed.join('\n')).to.match(/removed <workdir>\/slow-1-/);
    expect(fixed.report.fixed).to.include('removed packages/slow/stray.tar.zst from storage (no record named it)');
    expect(JSON.parse((await world.cli('builds', 'slow', '--json')).stdout)[0]).to.include({ status: 'failed', errorKind: 'system' });
  });

  describe('over SSH', () => {
    let server: TestServer;
    let admin: KeyPair;
    let user: KeyPair;

    beforeEach(async () => {
      [admin, user] = await Promise.all([makeKey('admin'), makeKey('user')]);
      expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
      expect((await world.cliWithInput(user.publicKey, 'users', 'add', 'user')).exitCode).to.equal(0);
      server = new TestServer(world);
      await server.start();
    });

    afterEach(async () => {
      expect(await server.tearDown()).to.deep.equal([]);
    });

    it('answers admins only, naming no server folder', async () => {
      const refused = await server.ssh(user, ['doctor']);
      expect(refused.exitCode).to.equal(1);
      expect(refused.stderr).to.include('doctor: only admins may run this command');
      mkdirSync(join(storage, 'images'), { recursive: true });
      writeFileSync(join(storage, 'images/stray'), 'x');
      const hourAgo = new Date(Date.now() - 3600_000);
      utimesSync(join(storage, 'images/stray'), hourAgo, hourAgo);
      const result = await server.ssh(admin, ['doctor']);
      expect(result.exitCode).to.equal(1);
      expect(result.stdout).to.include('stray-file: images/stray (1 B, incomplete) is in storage, but no record names it');
      expect(result.stdout).to.not.include(world.dir);
      const fixed = await server.ssh(admin, ['doctor', '--fix']);
      expect(fixed.exitCode, fixed.stdout).to.equal(0);
      expect(fixed.stdout).to.include('fixed: removed images/stray from storage');
      // A config file broken since the server started: the next start would fail.
      const good = readFileSync(world.configFile, 'utf8');
      writeFileSync(world.configFile, `${good}\nbogus_key: hunter2-secret\n`);
      const broken = await server.ssh(admin, ['doctor']);
      expect(broken.exitCode).to.equal(1);
      expect(broken.stdout).to.include('config: the config file does not load: 1 invalid setting(s): bogus_key (check-config on the server tells more)');
      // Locally the doctor needs the config itself: the command line says what is wrong with it.
      const local = await world.cli('doctor');
      expect([local.exitCode, local.stderr]).to.deep.equal([78, `upaas: invalid config: ${world.configFile}: bogus_key: unknown key (known keys: paths, storage, builder, server, admins, bootstrap, commands, apps, interpreters)`]);
      writeFileSync(world.configFile, `${good}\nx-secret: "hunter2-secret\n  bad: [\n`);
      const yaml = await server.ssh(admin, ['doctor']);
      expect(yaml.stdout).to.match(/config: the config file does not load: invalid YAML: .* \(check-config on the server tells more\)/);
      for (const text of [broken.stdout, yaml.stdout]) {
        expect(text).to.not.include('hunter2');
        expect(text).to.not.include(world.dir);
      }
      writeFileSync(world.configFile, good);
    });
  });
});
