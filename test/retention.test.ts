/**
 * Day two through the real CLI on the fixture image: retention of package
 * files, logs and replaced system images; releases and rollback; package id
 * prefixes; config vars; the whole-build time limit; free-space refusals.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { type AppRepo, type PackageJson, World, metadata } from './helpers/world.ts';

const STATIC = { interpreter: { type: 'static' } };

interface ReleaseJson {
  version: number;
  package: string;
  kind: 'build' | 'rollback';
  by: string | null;
  createdAt: string;
  build: number | null;
}

type Pkg = PackageJson & { file: boolean };

describe('day two: retention, releases, rollback, config vars (fixture image)', function () {
  this.timeout(300_000);
  let world: World;
  let app: AppRepo;
  let storage: string;
  let count = 0;
  let name: string;

  beforeEach(async () => {
    // Its own storage: the images in it are this world's alone.
    storage = mkdtempSync(join(tmpdir(), 'upaas-retention-storage-'));
    world = new World({ storage: { settings: { dir: storage } }, apps: { packages_per_app: 3, builds_per_app: 4 }, builder: { min_free: 0 } });
    name = `ret${++count}`;
    app = await world.app(name);
  });

  afterEach(() => {
    const leftovers = world.leftovers();
    world.remove();
    rmSync(storage, { recursive: true, force: true });
    expect(leftovers, 'left behind').to.deep.equal([]);
  });

  const packages = async (): Promise<Pkg[]> => (await world.packages(name)) as Pkg[];
  const releases = async (): Promise<ReleaseJson[]> => {
    const result = await world.cli('releases', name, '--json');
    expect(result.exitCode, result.stderr).to.equal(0);
    return JSON.parse(result.stdout) as ReleaseJson[];
  };
  const build = async (...extra: string[]) => {
    const result = await world.cli('build', name, ...extra);
    expect(result.exitCode, result.stdout + result.stderr).to.equal(0);
    return result;
  };
  const storedPackages = () => readdirSync(join(storage, 'packages', name)).filter((f) => f.endsWith('.tar.zst')).sort();
  const storedImages = () => (existsSync(join(storage, 'images')) ? readdirSync(join(storage, 'images')).filter((f) => !f.endsWith('.sha256')) : []);

  it('keeps the newest packages_per_app files and builds_per_app logs, records of all, and deletes a replaced image', async () => {
    await app.commit({ '.upaas.yml': metadata(STATIC), 'n.txt': '0' });
    for (let i = 1; i <= 7; i++) {
      if (i > 1) await app.commit({ 'n.txt': String(i) });
      await build();
    }
    const all = await packages();
    expect(all).to.have.length(7);
    expect(all.map((p) => p.file)).to.deep.equal([true, true, true, false, false, false, false]);
    expect(storedPackages()).to.deep.equal(all.slice(0, 3).map((p) => `${p.id}.tar.zst`).sort());
    const table = await world.cli('packages', name);
    expect(table.lines.filter((l) => l.startsWith('-'))).to.have.length(4);
    expect(table.lines.filter((l) => l.includes('(file deleted)'))).to.have.length(4);

    const builds = JSON.parse((await world.cli('builds', name, '--json')).stdout) as { id: number }[];
    expect(builds).to.have.length(7);
    const oldest = Math.min(...builds.map((b) => b.id));
    const gone = await world.cli('log', name, String(oldest));
    expect(gone.exitCode).to.equal(1);
    expect(gone.stderr).to.include(`the log of build ${oldest} of ${name} was deleted`);
    const logs = readdirSync(join(world.dir, 'state/logs', name)).sort();
    expect(logs).to.have.length(4);
    expect((await world.cli('log', name)).exitCode).to.equal(0);

    // A new bootstrap recipe makes a new image; the one it replaced goes.
    const [before] = storedImages();
    expect(before).to.be.a('string');
    world.update({ bootstrap: { env: { RECIPE: 'two' } } });
    await build('--fresh');
    const after = storedImages();
    expect(after).to.have.length(1);
    expect(after[0]).to.not.equal(before);
  });

  it('honours apps.per_app overrides for one app only', async () => {
    world.update({ apps: { per_app: { [name]: { packages_per_app: 2 } } } });
    await app.commit({ '.upaas.yml': metadata(STATIC), 'n.txt': '0' });
    for (let i = 1; i <= 4; i++) {
      await app.commit({ 'n.txt': String(i) });
      await build();
    }
    expect(storedPackages()).to.have.length(2);
    const bad = await world.cli('check-config');
    expect(bad.exitCode).to.equal(0);
    world.update({ apps: { per_app: { [name]: { packages_per_app: 1, colour: 'red' } } } });
    const refused = await world.cli('check-config');
    expect(refused.exitCode).to.equal(78);
    expect(refused.stderr).to.include(`apps.per_app.${name}.packages_per_app: expected a whole number of at least 2, got 1`);
    expect(refused.stderr).to.include(`apps.per_app.${name}.colour: unknown key`);
  });

  it('rolls back as a new release, builds on from the rolled-back package, and refuses pruned or current packages', async () => {
    await app.commit({ '.upaas.yml': metadata(STATIC), 'n.txt': '1' });
    await build();
    for (let i = 2; i <= 5; i++) {
      await app.commit({ 'n.txt': String(i) });
      await build();
    }
    const [p5, p4, p3, p2, p1] = (await packages()) as [Pkg, Pkg, Pkg, Pkg, Pkg];
    expect(p1.parent).to.equal(null);
    expect(p2.parent).to.equal(p1.id);
    expect([p1.file, p2.file, p3.file]).to.deep.equal([false, false, true]);

    const back = await world.cli('rollback', name, p3.id.slice(0, 7));
    expect(back.exitCode, back.stderr).to.equal(0);
    expect(back.stdout).to.include(`${name} v6: package ${p3.id.slice(0, 12)}`);
    expect((await packages()).find((p) => p.current)?.id).to.equal(p3.id);

    const again = await world.cli('rollback', name, p3.id);
    expect(again.exitCode).to.equal(1);
    expect(again.stderr).to.include('is already the current package');
    const pruned = await world.cli('rollback', name, p1.id.slice(0, 10));
    expect(pruned.exitCode).to.equal(1);
    expect(pruned.stderr).to.include(`the file of package ${p1.id.slice(0, 12)} of ${name} was deleted`);
    const short = await world.cli('rollback', name, p1.id.slice(0, 6));
    expect(short.exitCode).to.equal(1);
    expect(short.stderr).to.include('a unique prefix of at least 7 hex characters');
    const unknown = await world.cli('rollback', name, 'f'.repeat(40));
    expect(unknown.stderr).to.include(`${name} has no package ffffffff`);

    await app.commit({ 'n.txt': '6' });
    await build();
    const [p6] = (await packages()) as [Pkg];
    expect(p6.parent).to.equal(p3.id);
    expect(p6.fresh).to.equal(false);
    await build('--fresh');
    const [fresh] = (await packages()) as [Pkg];
    expect(fresh).to.include({ fresh: true, parent: null });

    const list = await releases();
    expect(list.map((r) => [r.version, r.kind, r.package])).to.deep.equal([
      [8, 'build', fresh.id],
      [7, 'build', p6.id],
      [6, 'rollback', p3.id],
      [5, 'build', p5.id],
      [4, 'build', p4.id],
      [3, 'build', p3.id],
      [2, 'build', p2.id],
      [1, 'build', p1.id],
    ]);
    expect(list[2]).to.include({ by: 'local-admin', build: null });
    expect(list[0]?.build).to.be.a('number');
    expect(Object.keys(list[0] as object).sort()).to.deep.equal(['build', 'by', 'createdAt', 'failure', 'kind', 'package', 'status', 'version']);

    // packages delete: a kept file goes, the record stays; never the current one.
    const current = await world.cli('packages', 'delete', name, fresh.id.slice(0, 8));
    expect(current.exitCode).to.equal(1);
    expect(current.stderr).to.include('is the current package');
    const del = await world.cli('packages', 'delete', name, p6.id.slice(0, 8));
    expect(del.exitCode, del.stderr).to.equal(0);
    expect((await packages()).find((p) => p.id === p6.id)?.file).to.equal(false);
    expect(storedPackages()).to.not.include(`${p6.id}.tar.zst`);
  });

  it("gives config vars to the app's actions only, hides them in listings, and keeps them out of the package", async () => {
    const secret = 'sEcReT-value-4711';
    await app.commit({
      '.upaas.yml': metadata({
        ...STATIC,
        env: { DB_URL: 'from-metadata', KEEP: 'metadata' },
        actions: {
          setup: {
            before: '[ "$DB_URL" = "postgres://x" ] && [ "$KEEP" = metadata ] && [ "$HOME" = /home/app ] && echo ok > cv-ok',
            main: 'echo "the token is $TOKEN"',
          },
        },
      }),
    });
    const set = await world.cli('config', 'set', name, 'DB_URL=postgres://x', `TOKEN=${secret}`);
    expect(set.exitCode, set.stderr).to.equal(0);
    const listed = await world.cli('config', 'list', name);
    expect(listed.stdout).to.equal('DB_URL=********\nTOKEN=********');
    expect((await world.cli('config', 'list', name, '--show')).stdout).to.include(`TOKEN=${secret}`);
    expect(JSON.parse((await world.cli('config', 'list', name, '--json')).stdout)).to.deep.equal({ DB_URL: '********', TOKEN: '********' });

    for (const [word, message] of [
      ['1X=y', 'invalid config var name "1X"'],
      ['HOME=/x', 'HOME and UPAAS_* are set by the builder'],
      ['UPAAS_APP=x', 'HOME and UPAAS_* are set by the builder'],
      ['NOEQUALS', 'expected KEY=VALUE'],
      [`BIG=${'x'.repeat(70 * 1024)}`, 'more than the 64 KiB'],
    ] as const) {
      const refused = await world.cli('config', 'set', name, word);
      expect(refused.exitCode, word).to.equal(1);
      expect(refused.stderr, word).to.include(message);
    }

    const result = await world.cli('config', 'set', name, 'EXTRA=1', '--build');
    expect(result.exitCode, result.stdout + result.stderr).to.equal(0);
    // An action that prints a value: the pusher and the log (readers may read it) see it masked.
    expect(result.stdout).to.include('the token is ********');
    expect(result.stdout).to.not.include(secret);
    const log = await world.cli('log', name);
    expect(log.stdout).to.include('the token is ********');
    expect(log.stdout).to.not.include(secret);
    const [pkg] = await world.packages(name);
    const tree = await world.unpack(name, pkg as PackageJson);
    expect(existsSync(join(tree, 'home/app/cv-ok')), 'the before action saw the config vars over the metadata env').to.equal(true);
    // The admin's actions dumped their env into the image: no config var is in it, nor anywhere else in the package.
    const found = await execa('grep', ['-rl', secret, tree], { reject: false });
    expect(String(found.stdout)).to.equal('');
    expect(found.exitCode).to.equal(1);

    const unset = await world.cli('config', 'unset', name, 'TOKEN', 'NOPE');
    expect(unset.exitCode).to.equal(1);
    expect(unset.stderr).to.include(`${name} has no config var NOPE`);
    expect((await world.cli('config', 'unset', name, 'TOKEN')).exitCode).to.equal(0);
    expect((await world.cli('config', 'list', name)).stdout).to.equal('DB_URL=********\nEXTRA=********');
  });

  it('stops a build past builder.timelimit as a user error and leaves nothing', async () => {
    world.update({ builder: { timelimit: 3 } });
    await app.commit({ '.upaas.yml': metadata({ ...STATIC, actions: { setup: { main: 'sleep 60' } } }) });
    const started = Date.now();
    const result = await world.cli('build', name);
    expect(result.exitCode).to.equal(1);
    expect(Date.now() - started).to.be.below(30_000);
    const last = result.lines.filter(Boolean).pop();
    expect(last).to.equal('!     user error: the build took longer than builder.timelimit (3 s) and was stopped');
    expect(await world.packages(name)).to.deep.equal([]);
  });

  it('refuses to start a build when less than builder.min_free is free, naming the folder and the space', async () => {
    world.update({ builder: { min_free: 1_000_000 } });
    await app.commit({ '.upaas.yml': metadata(STATIC) });
    const result = await world.cli('build', name);
    expect(result.exitCode).to.equal(2);
    const last = result.lines.filter(Boolean).pop();
    expect(last).to.match(/^!     system error: only [0-9.]+ [KMGT]iB is free under <workdir>, less than builder\.min_free \(1000000 GiB\); the build did not start$/);
  });
});
