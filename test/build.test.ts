/**
 * Fast tier: whole builds through the real CLI, on the tiny fixture image,
 * with real git repos, real chroots and real namespaces.
 */
import { existsSync, readFileSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { type AppRepo, World, git, metadata } from './helpers/world.ts';

const STATIC = { interpreter: { type: 'static' } };

describe('upaas build (fixture image)', function () {
  this.timeout(120_000);
  let world: World;
  let app: AppRepo;
  let name: string;
  let count = 0;

  beforeEach(async () => {
    world = new World();
    name = `app${++count}`;
    app = await world.app(name);
  });

  afterEach(() => {
    const leftovers = world.leftovers();
    world.remove();
    expect(leftovers, 'left behind by the build').to.deep.equal([]);
  });

  it('builds a first package from the image, streams step lines and records it', async () => {
    const rev = await app.commit({
      '.upaas.yml': metadata({
        interpreter: { type: 'shell', versions: ['2'] },
        os: { debian: { packages: ['fixture-tool'], '12': { packages: ['jq-lite'] } }, alpine: { packages: ['nope'] } },
        env: { APP_VAR: 'app', SHARED: 'app-wins' },
        actions: {
          setup: {
            before: 'env | sort > before-env',
            after: ['echo "after $UPAAS_REVISION" > after-ran', 'pwd > after-pwd'],
          },
        },
        files: { 'config/app.ini': 'key = value\n' },
      }),
      'hello.txt': 'hello\n',
    }, 'first commit');

    const result = await world.cli('build', name);
    expect(result.exitCode, result.stdout + result.stderr).to.equal(0);
    const steps = result.lines.filter((l) => l.startsWith('-----> '));
    // The first build of this run makes the image; later ones (other test files ran first) unpack it.
    expect(steps.some((l) => /Building the system image|Unpacking system image/.test(l))).to.equal(true);
    expect(steps.some((l) => l.includes('Installing interpreter shell 2.10'))).to.equal(true);
    expect(steps.some((l) => l.includes('Installing OS packages: fixture-tool jq-lite'))).to.equal(true);
    expect(result.lines.some((l) => l.startsWith('       ') && l.includes('Setting up fixture-tool'))).to.equal(true);
    const last = result.lines.filter(Boolean).pop() as string;
    expect(last).to.match(/^-----> Package [0-9a-f]{64} \([0-9.]+ [KMG]iB\) is now current for app[0-9]+$/);

    const [pkg] = await world.packages(name);
    expect(pkg).to.include({ fresh: true, parent: null, revision: rev, current: true });
    expect(pkg?.interpreter).to.deep.equal({ type: 'shell', version: '2.10' });
    expect(last).to.include(pkg?.id);
    expect(statSync(world.packageFile(name, pkg!)).size).to.equal(pkg?.bytes);

    const root = await world.unpack(name, pkg!);
    const home = join(root, 'home/app');
    expect(readFileSync(join(home, 'hello.txt'), 'utf8')).to.equal('hello\n');
    expect(readFileSync(join(home, 'after-ran'), 'utf8')).to.equal(`after ${rev}\n`);
    expect(readFileSync(join(home, 'after-pwd'), 'utf8')).to.equal('/home/app\n');
    expect(readFileSync(join(home, 'main-ran'), 'utf8'), 'admin default main action').to.equal('admin-main\n');
    expect(readFileSync(join(home, 'config/app.ini'), 'utf8')).to.equal('key = value\n');
    const env = readFileSync(join(home, 'before-env'), 'utf8');
    expect(env).to.include('HOME=/home/app\n');
    expect(env).to.include('UPAAS_FRESH_PACKAGE=true\n');
    expect(env).to.include('FROM_ANY=any\n');
    expect(env).to.include('SHARED=app-wins\n');
    expect(env).to.include('APP_VAR=app\n');
    expect(env).to.include('UPAAS_INTERPRETER_VERSION=2.10\n');
    for (const admin of ['interpreter-env', 'finalize-env']) {
      const adminEnv = readFileSync(join(root, 'var/lib/fixture', admin), 'utf8');
      expect(adminEnv, `${admin}: the admin's env`).to.include('SHARED=v2.10\n').and.include('UPAAS_INTERPRETER_VERSION=2.10\n');
      expect(adminEnv, `${admin}: nothing of the app's env`).not.to.include('APP_VAR').and.not.to.include('app-wins');
    }
    expect(existsSync(join(root, 'var/lib/fixture/installed/fixture-tool'))).to.equal(true);
    expect(existsSync(join(root, 'var/lib/fixture/installed/jq-lite'))).to.equal(true);
    expect(existsSync(join(root, 'var/lib/fixture/installed/fixture-lib')), 'interpreter package').to.equal(true);
    expect(readFileSync(join(root, 'var/lib/fixture/interpreter'), 'utf8')).to.equal('2.10\n');
    expect(existsSync(join(root, 'var/lib/fixture/system-ran'))).to.equal(true);
    expect(statSync(join(home, 'hello.txt')).uid, 'apps.uid owns the app').to.equal(33);
    expect(existsSync(join(root, 'run/upaas')), 'no bind mount point left in the image').to.equal(false);

    const builds = await world.cli('builds', name);
    expect(builds.stdout).to.match(/#1 .* fresh {2}package [0-9a-f]{12}/);
    const log = await world.cli('log', name, '1');
    expect(log.stdout).to.include('Setting up fixture-tool');
    expect(log.stdout).to.include(pkg?.id);
  });

  it('builds incrementally from the current package, keeps its interpreter and records the changelog', async () => {
    const first = await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'shell', versions: ['1'] }, actions: { setup: { after: 'echo x >> builds-seen' } } }) });
    expect((await world.cli('build', name)).exitCode).to.equal(0);
    const second = await app.commit({ 'a.txt': 'a\n' }, 'add a');
    const third = await app.commit({ 'b.txt': 'b\n', '.upaas.yml': metadata({ interpreter: { type: 'shell' }, actions: { setup: { after: 'echo x >> builds-seen' } } }) }, 'add b');

    const result = await world.cli('build', name);
    expect(result.exitCode, result.stdout).to.equal(0);
    expect(result.stdout, 'the first build kept its tree').to.include('Using the cached tree of current package');
    expect(result.stdout).not.to.include('Installing interpreter');
    expect(result.stdout).to.include('Updating app');
    const [pkg, parent] = await world.packages(name);
    expect(pkg).to.include({ fresh: false, parent: parent?.id, revision: third, current: true });
    expect(parent).to.include({ revision: first, current: false });
    expect(pkg?.interpreter, 'incremental builds keep the version').to.deep.equal({ type: 'shell', version: '1.0' });
    expect(pkg?.changelog.map((c) => c.revision)).to.deep.equal([third, second]);
    expect(pkg?.changelog.map((c) => c.subject)).to.deep.equal(['add b', 'add a']);

    const root = await world.unpack(name, pkg!);
    expect(readFileSync(join(root, 'home/app/builds-seen'), 'utf8'), 'state kept from the parent').to.equal('x\nx\n');
    expect(readFileSync(join(root, 'home/app/b.txt'), 'utf8')).to.equal('b\n');
    const env = await world.cli('log', name);
    expect(env.stdout).to.include('based on package');
  });

  it('installs only missing OS packages, refreshing the package lists once before the first of them and never when none is missing', async () => {
    const withPackages = (packages: string[]) => ({ '.upaas.yml': metadata({ interpreter: { type: 'shell' }, os: { debian: { packages } } }) });
    const refreshes = async () => {
      const [pkg] = await world.packages(name);
      return readFileSync(join(await world.unpack(name, pkg!), 'var/lib/fixture/refreshed'), 'utf8');
    };
    await app.commit(withPackages(['fixture-tool']));
    const first = await world.cli('build', name);
    expect(first.exitCode, first.stdout).to.equal(0);
    // Three installs (the interpreter's fixture-lib, then fixture-tool): one refresh, before the first.
    expect(await refreshes()).to.equal('lists refreshed\n');
    expect(first.stdout.indexOf('$ echo "lists refreshed"')).to.be.lessThan(first.stdout.indexOf('$ fixture-install fixture-lib'));

    await app.commit({ 'a.txt': 'a\n' });
    const same = await world.cli('build', name);
    expect(same.exitCode, same.stdout).to.equal(0);
    expect(same.stdout).to.include('installed already: fixture-tool');
    expect(same.stdout).not.to.include('$ fixture-install');
    expect(await refreshes(), 'nothing to install: no refresh').to.equal('lists refreshed\n');

    await app.commit(withPackages(['fixture-tool', 'jq-lite']));
    const more = await world.cli('build', name);
    expect(more.exitCode, more.stdout).to.equal(0);
    expect(more.stdout).to.include('installed already: fixture-tool');
    expect(more.stdout).to.include('$ fixture-install jq-lite');
    expect(more.stdout).not.to.include('$ fixture-install fixture-tool');
    expect(await refreshes()).to.equal('lists refreshed\nlists refreshed\n');
  });

  it('--fresh builds from the image again, and an interpreter change forces a fresh build', async () => {
    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'shell', versions: ['1.0'] }, actions: { setup: { after: 'echo x >> builds-seen' } } }) });
    expect((await world.cli('build', name)).exitCode).to.equal(0);

    const fresh = await world.cli('build', name, '--fresh');
    expect(fresh.exitCode, fresh.stdout).to.equal(0);
    expect(fresh.stdout).to.include('Using the cached tree of the system image');
    let [pkg] = await world.packages(name);
    expect(pkg?.fresh).to.equal(true);
    expect(pkg?.parent, 'a fresh package starts from no package').to.equal(null);
    let root = await world.unpack(name, pkg!);
    expect(readFileSync(join(root, 'home/app/builds-seen'), 'utf8')).to.equal('x\n');

    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'shell', versions: ['2.0'] } }) });
    const changed = await world.cli('build', name);
    expect(changed.exitCode, changed.stdout).to.equal(0);
    expect(changed.stdout).to.include('Building a fresh package: the interpreter changes from shell 1.0 to shell 2.0');
    [pkg] = await world.packages(name);
    expect(pkg).to.include({ fresh: true });
    expect(pkg?.interpreter.version).to.equal('2.0');
    root = await world.unpack(name, pkg!);
    expect(readFileSync(join(root, 'var/lib/fixture/interpreter'), 'utf8')).to.equal('2.0\n');
  });

  it('builds another revision with --rev, and a static app with no interpreter packages', async () => {
    const old = await app.commit({ '.upaas.yml': metadata(STATIC), 'v.txt': 'old\n' });
    await app.commit({ 'v.txt': 'new\n' });
    const result = await world.cli('build', name, '--rev', old.slice(0, 10));
    expect(result.exitCode, result.stdout).to.equal(0);
    const [pkg] = await world.packages(name);
    expect(pkg?.revision).to.equal(old);
    expect(pkg?.interpreter).to.deep.equal({ type: 'static', version: 'any' });
    const root = await world.unpack(name, pkg!);
    expect(readFileSync(join(root, 'home/app/v.txt'), 'utf8')).to.equal('old\n');
  });

  it('builds the deploy branch even when a tag carries its name', async () => {
    const old = await app.commit({ '.upaas.yml': metadata(STATIC), 'v.txt': 'old\n' });
    const head = await app.commit({ 'v.txt': 'new\n' });
    await git(app.work, 'tag', 'main', old);
    await git(app.work, 'push', '--quiet', 'origin', 'refs/tags/main');
    const result = await world.cli('build', name);
    expect(result.exitCode, result.stdout).to.equal(0);
    expect((await world.packages(name))[0]?.revision).to.equal(head);
  });

  it('cleans up after an app that made a tree deeper than PATH_MAX', async () => {
    // Three chains of 1,000 folders nested by mv (each command's own paths stay short): 6,000+ characters deep.
    const deep = 'P=$(printf "d/%.0s" $(seq 1000)); for c in c1 c2 c3; do mkdir -p /var/$c/$P; done; mv /var/c3 /var/c2/$P && mv /var/c2 /var/c1/$P';
    await app.commit({ '.upaas.yml': metadata({ ...STATIC, actions: { setup: { main: deep } } }) });
    const result = await world.cli('build', name);
    expect(result.exitCode, result.stdout).to.equal(0);
    expect(result.stdout).not.to.include('warning: cannot remove');
    // afterEach: no temp dir, mount or process is left behind
  });

  describe('failures change nothing', () => {
    let good: string;
    let before: string;

    /** Builds a good first package, then commits `files` for the failing build. */
    async function failWith(files: Record<string, string | null>, ...args: string[]) {
      before = (await app.commit({ '.upaas.yml': metadata({ ...STATIC, actions: { setup: { after: 'sleep 0' } } }) }));
      expect((await world.cli('build', name)).exitCode).to.equal(0);
      good = ((await world.packages(name))[0] as { id: string }).id;
      await app.commit(files, 'breaking change');
      return world.cli('build', name, ...args);
    }

    async function expectUnchanged() {
      const packages = await world.packages(name);
      expect(packages.map((p) => p.id)).to.deep.equal([good]);
      expect(packages[0]).to.include({ current: true, revision: before });
      expect(existsSync(world.packageFile(name, packages[0]!))).to.equal(true);
      const storedPackages = readdirSync(join(world.storageDir, `packages/${name}`));
      expect(storedPackages.filter((f) => !f.endsWith('.sha256'))).to.deep.equal([`${good}.tar.zst`]);
    }

    it('a failing app action is a user error (exit 1)', async () => {
      const result = await failWith({ '.upaas.yml': metadata({ ...STATIC, actions: { setup: { main: ['echo about to fail', 'exit 3'] } } }) });
      expect(result.exitCode).to.equal(1);
      expect(result.stdout).to.include('       about to fail');
      const last = result.lines.filter(Boolean).pop();
      expect(last).to.equal('!     user error: main action failed: `exit 3` exited with status 3');
      await expectUnchanged();
      const builds = await world.cli('builds', name, '--json');
      const [failed] = JSON.parse(builds.stdout) as { status: string; errorKind: string }[];
      expect(failed).to.include({ status: 'failed', errorKind: 'user' });
    });

    it('an overlayfs whiteout (a character device 0/0) left in a plain root is a user error naming it, and no package holds one', async () => {
      // On a cached tree (an overlay) mknod of 0/0 is refused; on a plain root it needs no capability.
      world.update({ builder: { cache: { trees: 0 } } });
      const result = await failWith({ '.upaas.yml': metadata({ ...STATIC, actions: { setup: { main: 'mkdir -p /srv && mknod /srv/gone c 0 0' } } }) });
      expect(result.exitCode, result.stdout).to.equal(1);
      const last = result.lines.filter(Boolean).pop();
      expect(last, result.stdout + result.stderr).to.equal('!     user error: the build left "/srv/gone", a character device 0/0, which overlayfs takes for a deleted file; a package cannot hold one');
      await expectUnchanged();
    });

    it('a failing finalize action is a system error (exit 2)', async () => {
      world.remove();
      world = new World({ interpreters: { actions: { setup: { finalize: 'test ! -e /home/app/break-finalize' } } } });
      app = await world.app(name);
      const result = await failWith({ 'break-finalize': 'yes' });
      expect(result.exitCode).to.equal(2);
      expect(result.lines.filter(Boolean).pop()).to.match(/^!     system error: finalize action failed: `test ! -e \/home\/app\/break-finalize` exited with status 1$/);
      await expectUnchanged();
    });

    it('a command past its time limit is killed with all its children', async () => {
      world.remove();
      world = new World({ commands: { timelimit: 3 } });
      app = await world.app(name);
      const marker = `upaas-test-sleeper-${process.pid}-${Date.now()}`;
      const started = Date.now();
      const result = await failWith({
        '.upaas.yml': metadata({ ...STATIC, actions: { setup: { main: `(exec -a ${marker} sleep 300) & (setsid sh -c "exec -a ${marker} sleep 300" &) ; sleep 300` } } }),
      });
      expect(result.exitCode).to.equal(1);
      expect(result.lines.filter(Boolean).pop()).to.match(/^!     user error: main action failed: .* was killed after its time limit of 3s$/);
      expect(Date.now() - started).to.be.below(60_000);
      const { execa } = await import('execa');
      const survivors = await execa('pgrep', ['-f', marker], { reject: false });
      expect(String(survivors.stdout), 'no process survives').to.equal('');
      await expectUnchanged();
    });

    it('invalid metadata is a user error naming the key and revision, before any image is touched', async () => {
      const result = await failWith({ '.upaas.yml': metadata({ interpreter: { type: 'static' }, os: { debian: { packages: ['ok', 3] } } }) });
      expect(result.exitCode).to.equal(1);
      const last = result.lines.filter(Boolean).pop() as string;
      expect(last).to.match(/^!     user error: invalid metadata in \.upaas\.yml at [0-9a-f]{12}: os\.debian\.packages\[1\]: expected a package name .*, got 3$/);
      expect(result.stdout).not.to.include('Unpacking');
      await expectUnchanged();
    });

    it('oversized metadata, a YAML alias bomb and an oversized env are user errors, before any image is touched', async () => {
      const bomb = ['x-a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
      for (let level = 1; level <= 9; level++) {
        const refs = Array.from({ length: 10 }, () => `*${String.fromCharCode(96 + level)}`).join(', ');
        bomb.push(`x-${String.fromCharCode(97 + level)}: &${String.fromCharCode(97 + level)} [${refs}]`);
      }
      bomb.push('interpreter: {type: static, settings: {x: *j}}');
      const cases: [string, RegExp][] = [
        [`interpreter: {type: static}\nfiles: {big.txt: "${'x'.repeat(1100 * 1024)}"}\n`, /\.upaas\.yml at [0-9a-f]{12} is \d+ bytes; metadata may be at most 1048576 bytes$/],
        [`${bomb.join('\n')}\n`, /it expands to more than 4194304 bytes \(through YAML aliases\?\)$/],
        [metadata({ ...STATIC, env: { BIG: 'y'.repeat(70 * 1024) } }), /env, repository\.env and interpreter\.settings take \d+ bytes together; the limit is 65536$/],
      ];
      for (const [index, [text, message]] of cases.entries()) {
        const result = index === 0 ? await failWith({ '.upaas.yml': text }) : await app.commit({ '.upaas.yml': text }).then(() => world.cli('build', name));
        expect(result.exitCode, result.stdout).to.equal(1);
        expect(result.lines.filter(Boolean).pop()).to.match(/^!     user error: /).and.match(message);
        expect(result.stdout).not.to.include('Unpacking');
      }
      await expectUnchanged();
    });

    it('a missing metadata file, bad YAML and an interpreter the admin does not offer are user errors', async () => {
      let result = await failWith({ '.upaas.yml': null });
      expect(result.exitCode).to.equal(1);
      expect(result.lines.filter(Boolean).pop()).to.match(/^!     user error: revision [0-9a-f]{12} has no \.upaas\.yml/);
      await app.commit({ '.upaas.yml': 'interpreter: [unclosed' });
      result = await world.cli('build', name);
      expect(result.exitCode).to.equal(1);
      expect(result.stdout).to.match(/!     user error: invalid metadata: .*invalid YAML/);
      await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'shell', versions: ['3'] } }) });
      result = await world.cli('build', name);
      expect(result.exitCode).to.equal(1);
      expect(result.lines.filter(Boolean).pop()).to.match(
        /^!     user error: invalid metadata in \.upaas\.yml at [0-9a-f]{12}: interpreter\.versions: none of 3 is offered for shell \(offered: 1\.0, 2\.0, 2\.10\)$/,
      );
      await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'cobol' } }) });
      result = await world.cli('build', name);
      expect(result.lines.filter(Boolean).pop()).to.match(
        /^!     user error: invalid metadata in \.upaas\.yml at [0-9a-f]{12}: interpreter\.type: "cobol" is not offered by this server \(offered: static, shell\)$/,
      );
      await expectUnchanged();
    });

    it('OS packages with no readable /etc/os-release in the current package are a user error; --fresh mends it', async () => {
      await app.commit({ '.upaas.yml': metadata({ ...STATIC, actions: { setup: { after: 'rm /etc/os-release' } } }) });
      expect((await world.cli('build', name)).exitCode).to.equal(0);
      await app.commit({ '.upaas.yml': metadata({ ...STATIC, os: { debian: { packages: ['fixture-tool'] } } }) });
      const result = await world.cli('build', name);
      expect(result.exitCode, result.stdout).to.equal(1);
      expect(result.lines.filter(Boolean).pop()).to.equal(
        '!     user error: cannot tell which OS packages to install: /etc/os-release cannot be read in the current package (a fresh build, -o fresh, starts from the system image again)',
      );
      const fresh = await world.cli('build', name, '--fresh');
      expect(fresh.exitCode, fresh.stdout).to.equal(0);
      expect(fresh.stdout).to.include('Installing OS packages: fixture-tool');
    });

    it('an OS package that does not exist is a user error', async () => {
      const result = await failWith({ '.upaas.yml': metadata({ ...STATIC, os: { debian: { packages: ['no-such-package'] } } }) });
      expect(result.exitCode).to.equal(1);
      expect(result.stdout).to.include('E: Unable to locate package no-such-package');
      expect(result.lines.filter(Boolean).pop()).to.equal(
        '!     user error: installing OS package no-such-package (from the app metadata) failed: `fixture-install no-such-package` exited with status 100',
      );
      await expectUnchanged();
    });

    for (const [name, path] of [
      ['a ../ path', '../escape.txt'],
      ['an absolute path outside the app folder', '/etc/passwd'],
      ['a path through a symlink the app committed', 'link/escape.txt'],
    ] as const) {
      it(`a files entry with ${name} is a user error`, async () => {
        if (path.startsWith('link/')) symlinkSync('/etc', join(app.work, 'link'));
        const result = await failWith({ '.upaas.yml': metadata({ ...STATIC, files: { [path]: 'owned\n' } }) });
        expect(result.exitCode).to.equal(1);
        // Paths are checked up front (named as metadata problems); a symlink in the checkout only when writing.
        expect(result.lines.filter(Boolean).pop()).to.match(/^!     user error: (invalid metadata in \.upaas\.yml at [0-9a-f]{12}: )?files\[/);
        await expectUnchanged();
      });
    }

    it('an unknown app or revision is a user error', async () => {
      let result = await world.cli('build', 'nope');
      expect(result.exitCode).to.equal(1);
      expect(result.stderr).to.include('repository nope does not exist or you have no access to it');
      result = await world.cli('build', '../etc');
      expect(result.exitCode).to.equal(1);
      expect(result.stderr).to.include('invalid app name');
      await app.commit({ '.upaas.yml': metadata(STATIC) });
      result = await world.cli('build', name, '--rev', 'no-such-branch');
      expect(result.exitCode).to.equal(1);
      expect(result.stdout).to.include('!     user error: revision no-such-branch does not exist in the repository');
    });
  });
});
