import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { TestServer } from './helpers/server.ts';
import { type AppRepo, type PackageJson, World, fastConfig, metadata } from './helpers/world.ts';

/**
 * A tree as a sorted list of lines: every entry with type, mode, owner, size,
 * mtime (in nanoseconds), device number, link target, content hash, and which names share an
 * inode. Folders under `skip` are left out.
 */
function describeTree(root: string, skip: string[]): string[] {
  const lines: string[] = [];
  const inodes = new Map<bigint, string[]>();
  const walk = (rel: string) => {
    const path = join(root, rel);
    const info = lstatSync(path, { bigint: true });
    const type = info.isDirectory() ? 'd' : info.isSymbolicLink() ? 'l' : info.isFile() ? 'f' : info.isCharacterDevice() ? 'c' : info.isBlockDevice() ? 'b' : info.isFIFO() ? 'p' : 's';
    const parts = [rel || '.', type, (Number(info.mode) & 0o7777).toString(8), `${info.uid}:${info.gid}`, String(info.mtimeNs)];
    if (type === 'f') parts.push(String(info.size), createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16));
    if (type === 'l') parts.push(readlinkSync(path));
    if (type === 'c' || type === 'b') parts.push(String(info.rdev));
    if (type !== 'd' && info.nlink > 1) inodes.set(info.ino, [...(inodes.get(info.ino) ?? []), rel]);
    lines.push(parts.join(' '));
    if (type === 'd') {
      for (const name of readdirSync(path)) {
        const child = rel ? `${rel}/${name}` : name;
        if (!skip.includes(child)) walk(child);
      }
    }
  };
  walk('');
  for (const names of inodes.values()) lines.push(`hard links: ${names.sort().join(' ')}`);
  return lines.sort();
}

/** The build script of the test app: stage 1 makes a tree, the later stages change it in every way a layer can hold. */
const MUTATE = `#!/bin/sh
set -eu
t=/srv/t
case "$(cat stage)" in
1)
  [ -e $t ] && exit 0
  # Ballast no later stage touches, in whole frames of its own: the builds after copy those (archive/frames.ts).
  if [ -e ballast ]; then mkdir -p /opt/ballast; for i in 1 2 3; do head -c 33M /dev/zero > /opt/ballast/$i; done; fi
  mkdir -p $t/dir/sub $t/keep $t/moved/inner $t/hl $t/gone-dir/x
  echo hi > $t/hl/a; ln $t/hl/a $t/hl/b
  echo x > $t/dir/sub/f; echo y > $t/gone; echo k > $t/keep/k; ln $t/keep/k $t/k2
  ln -s ../keep/k $t/dir/sym; echo m > $t/moved/inner/m; echo z > $t/gone-dir/x/z
  seq 1 20000 > $t/big; chmod 600 $t/keep/k
  ;;
2)
  rm $t/gone; rm -rf $t/dir; mkdir $t/dir; echo new > $t/dir/new
  mv $t/moved $t/renamed
  chmod 4755 $t/keep; chown 33:33 $t/big; ln -sf /etc/hostname $t/newsym
  rm -rf $t/gone-dir; echo later > $t/added
  # Changes to the image below: a file removed, a folder made again (opaque over the image's).
  rm -f /usr/bin/yes; rm -rf /usr/share/git-core; mkdir -p /usr/share/git-core/new; echo n > /usr/share/git-core/new/n
  ;;
3)
  echo more >> $t/hl/a
  mkdir $t/gone; echo back > $t/gone/again
  rm $t/added; rm -rf $t/renamed/inner; echo n > $t/dir/newer
  : > $t/big
  ;;
esac
`;

/** Everything the build changed gets one mtime, so that two builds of the same revision can be compared entry for entry. */
const NORMALIZE = {
  interpreters: {
    actions: {
      setup: {
        system: 'touch -d "1 second ago" /var/lib/fixture/mark',
        finalize: ['rm -rf /tmp/*', 'find / -xdev -newer /var/lib/fixture/mark ! -path /etc/resolv.conf -exec touch -h -d @1600000000 {} +', 'touch -h -d @1600000000 /var/lib/fixture/mark'],
      },
    },
  },
};

describe('tree cache (fixture image)', function () {
  this.timeout(300_000);
  let world: World;
  let storage: string;
  let app: AppRepo;
  const name = 'cached';

  beforeEach(async () => {
    // Storage of its own: doctor --fix removes what this world's records do not name.
    storage = mkdtempSync(join(tmpdir(), 'upaas-tree-storage-'));
    world = new World(NORMALIZE, fastConfig(storage));
    app = await world.app(name);
  });

  afterEach(() => {
    const leftovers = world.leftovers();
    world.remove();
    rmSync(storage, { recursive: true, force: true });
    expect(leftovers, 'left behind by the builds').to.deep.equal([]);
  });

  const stage = (n: number) => ({
    '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'sh mutate.sh' } } }),
    'mutate.sh': MUTATE,
    stage: `${n}\n`,
  });
  const build = async (...args: string[]) => {
    const result = await world.cli('build', name, ...args);
    expect(result.exitCode, result.stdout + result.stderr).to.equal(0);
    const [pkg] = await world.packages(name);
    return { stdout: result.stdout, pkg: pkg as PackageJson };
  };
  /** How many lines of the package's uncompressed tar stream hold `text` (grep reads it: it is over 100 MB). */
  const linesWith = async (pkg: PackageJson, text: string) =>
    (await execa('zstd', ['-dc', world.packageFile(name, pkg)], { buffer: false }).pipe('grep', ['-c', '-a', '-F', '--', text], { reject: false })).stdout;
  const tree = async (pkg: PackageJson) => describeTree(await world.unpack(name, pkg), ['home/app/.git']);

  /** Builds three stages on cached trees, then the same revisions with the cache off, and compares the packages. */
  const bothWays = async (layers: number | null) => {
    if (layers !== null) world.update({ builder: { cache: { layers } } });
    await app.commit({ ...stage(1), ballast: '' });
    const parent = await build();
    expect(parent.stdout, 'a fresh build looks at the frames of the system image').to.match(/\d+ of \d+ frames copied from the archive before/);
    const second = await app.commit(stage(2));
    const x = await build();
    expect(x.stdout).to.include('Using the cached tree of current package');
    // The cache holds the changes as overlayfs writes them: whiteouts (0/0 character devices) among them.
    const whiteouts = await execa('find', [join(world.dir, 'state/trees'), '-type', 'c']);
    expect(whiteouts.stdout, 'the layers hold whiteouts').not.to.equal('');
    const third = await app.commit(stage(3));
    const x2 = await build();
    expect(x2.stdout, 'the tree of a build on a cached tree is kept too').to.include('Using the cached tree of current package');
    // Its archive copied what the build left alone from the package before (archive/frames.ts).
    // (Stage 3 changes a hard-linked file: its layer is not kept, so the squash shows in stage 2's build.)
    if (layers !== null) expect(x.stdout, 'stacked deeper than builder.cache.layers').to.include('squashed into one');
    // Both copied the ballast's frames from the package before, and made the rest again.
    for (const { stdout } of [x, x2]) expect(Number(/(\d+) of \d+ frames copied from the archive before/.exec(stdout)?.[1]), stdout).to.be.at.least(2);

    // The same revisions again from the same parent, with the cache off: unpack, build, pack.
    expect((await world.cli('rollback', name, parent.pkg.id)).exitCode).to.equal(0);
    world.update({ builder: { cache: { trees: 0 } } });
    const y = await build('--rev', second);
    expect(y.stdout).to.include('Unpacking current package');
    const y2 = await build('--rev', third);

    expect(await tree(x.pkg)).to.deep.equal(await tree(y.pkg));
    expect(await tree(x2.pkg)).to.deep.equal(await tree(y2.pkg));
    for (const pkg of [x.pkg, x2.pkg]) {
      expect(await linesWith(pkg, 'trusted.overlay'), 'no overlayfs attribute in a package').to.equal('0');
      const listing = await execa('tar', ['-tv', '--zstd', '-f', world.packageFile(name, pkg)]);
      expect(listing.stdout.split('\n').filter((line) => line.startsWith('c')), 'no whiteout in a package').to.deep.equal([]);
    }
    const unpacked = await world.unpack(name, x2.pkg);
    expect(readFileSync(join(unpacked, 'srv/t/hl/b'), 'utf8'), 'a hard link changed through one name').to.equal('hi\nmore\n');
    expect(lstatSync(join(unpacked, 'srv/t/hl/a')).ino).to.equal(lstatSync(join(unpacked, 'srv/t/hl/b')).ino);
  };

  it('builds on a cached tree give the same packages, entry for entry, as unpacking, and no whiteout reaches a package', async () => {
    await bothWays(null);
  });

  it('a tree squashed at builder.cache.layers (here every build: 2) gives the same packages as unpacking', async () => {
    await bothWays(2);
    const doctor = JSON.parse((await world.cli('doctor', '--json')).stdout) as { cache: { trees: number; layers: number } };
    // The image's tree and the last cached package's tree (its squashed layer over the image).
    expect(doctor.cache.layers).to.be.at.most(3);
  });

  it('a build that leaves a socket (left out of its package) gives the next build the tree of its package', async () => {
    // git's credential cache daemon listens on a unix socket; the sandbox's PID namespace ends it with the action.
    const socket = (make: string) => ({
      '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: `mkdir -p -m 700 /srv/s && ${make}` } } }),
    });
    const daemon = 'rm -f /srv/s/sock && (git credential-cache--daemon /srv/s/sock &) && while [ ! -S /srv/s/sock ]; do sleep 0.05; done';
    await app.commit(socket('echo file > /srv/s/sock && echo file > /srv/s/other'));
    const parent = await build();
    // The socket replaces a file of the tree below, in a folder it changes.
    const second = await app.commit(socket(daemon));
    const x = await build();
    const third = await app.commit(socket('echo 3 > /srv/three'));
    const x2 = await build();
    expect((await tree(x2.pkg)).filter((line) => line.startsWith('srv/s/sock')), 'the file the socket replaced stays gone').to.deep.equal([]);

    expect((await world.cli('rollback', name, parent.pkg.id)).exitCode).to.equal(0);
    world.update({ builder: { cache: { trees: 0 } } });
    const y = await build('--rev', second);
    const y2 = await build('--rev', third);
    expect(await tree(x.pkg)).to.deep.equal(await tree(y.pkg));
    expect(await tree(x2.pkg)).to.deep.equal(await tree(y2.pkg));
  });

  it('keeps builder.cache.trees trees, least recently used first; drops a tree on rollback and deletion; the sweep removes half-made layers', async () => {
    world.update({ builder: { cache: { trees: 2 } } });
    const trees = join(world.dir, 'state/trees');
    const doctor = async () => JSON.parse((await world.cli('doctor', '--json')).stdout) as { cache: { trees: number; layers: number }; problems: { kind: string }[] };
    await app.commit(stage(1));
    const first = await build();
    await app.commit({ 'more.txt': 'more\n' });
    const second = await build();
    expect(second.stdout).to.include('Using the cached tree of current package');
    // The image's tree, the first package's over it, the second's over that.
    expect((await doctor()).cache).to.include({ trees: 1, layers: 3 });

    expect((await world.cli('rollback', name, first.pkg.id)).exitCode).to.equal(0);
    expect((await doctor()).cache, 'the rolled-back tree is dropped, the one below is current again').to.include({ trees: 1, layers: 2 });
    expect(readdirSync(trees)).to.have.length(2);

    const other = await world.app('other');
    await other.commit(stage(1));
    expect((await world.cli('build', 'other')).exitCode).to.equal(0);
    // Two trees at most: the image's and other's were used last; cached's goes.
    expect((await doctor()).cache).to.include({ trees: 1, layers: 2 });
    await app.commit({ 'again.txt': 'again\n' });
    const evicted = await build();
    expect(evicted.stdout).to.include('Unpacking current package');

    // Its package unpacked again, the new tree over it; other's over the image's.
    expect((await doctor()).cache).to.include({ trees: 2, layers: 4 });
    expect((await world.cli('repos', 'delete', 'other', '--yes')).exitCode).to.equal(0);
    expect((await doctor()).cache, "a deleted app's tree goes").to.include({ trees: 2, layers: 3 });
    expect(readdirSync(trees)).to.have.length(3);

    const half = join(trees, 'cached-999-abcdef');
    mkdirSync(join(half, 'tree/etc'), { recursive: true });
    expect((await doctor()).problems.map((problem) => problem.kind)).to.deep.equal(['leftover-tree']);
    expect((await world.cli('doctor', '--fix')).exitCode).to.equal(0);
    expect(existsSync(half)).to.equal(false);
  });

  it('a cached tree with a layer folder gone is retired: the next build unpacks its package, the one after stands on the cache again', async () => {
    const doctor = async () => JSON.parse((await world.cli('doctor', '--json')).stdout) as { healthy: boolean; cache: { trees: number; layers: number } };
    await app.commit(stage(1));
    await build();
    await app.commit({ 'more.txt': 'more\n' });
    expect((await build()).stdout).to.include('Using the cached tree of current package');
    // The newest layer (the current package's) vanishes from under the cache, as a hand or a disk might make it.
    const trees = join(world.dir, 'state/trees');
    const newest = readdirSync(trees)
      .map((name) => ({ name, made: lstatSync(join(trees, name)).mtimeMs }))
      .sort((a, b) => b.made - a.made)[0]?.name as string;
    rmSync(join(trees, newest), { recursive: true, force: true });
    await app.commit({ 'again.txt': 'again\n' });
    const after = await build();
    expect(after.stdout).to.include('Unpacking current package');
    expect(after.stdout).not.to.include('Using the cached tree of current package');
    await app.commit({ 'last.txt': 'last\n' });
    expect((await build()).stdout).to.include('Using the cached tree of current package');
    expect((await doctor()).healthy, 'no record of the folder that went is left').to.equal(true);
  });

  it('counts the cached tree a build stands on against builder.limits.disk: the whole tree stays within it', async () => {
    world.update({ builder: { limits: { disk: 100 } } });
    const writes = (mib: number, file: string) => ({
      '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: `mkdir -p /srv && head -c ${mib}M /dev/zero > /srv/${file}` } } }),
    });
    await app.commit(writes(55, 'one'));
    await build();
    await app.commit(writes(55, 'two'));
    const result = await world.cli('build', name);
    expect(result.stdout).to.include('Using the cached tree of current package');
    expect(result.exitCode, result.stdout).to.equal(1);
    expect(result.lines.filter(Boolean).pop()).to.match(/^!     user error: the build filled its disk: it may use 100 MiB \(builder\.limits\.disk\), the cached tree it builds on \([0-9]+ MiB\) included$/);
  });

  it("drops at the server's start what the cache no longer keeps (here: all of it, the cache turned off)", async () => {
    const doctor = async () => (JSON.parse((await world.cli('doctor', '--json')).stdout) as { cache: { layers: number } }).cache;
    const trees = join(world.dir, 'state/trees');
    await app.commit(stage(1));
    await build();
    // The image's tree and the package's over it.
    expect(await doctor()).to.include({ layers: 2 });
    world.update({ builder: { cache: { trees: 0 } } });
    const server = new TestServer(world);
    await server.start();
    try {
      expect(server.output.join('')).to.include('the tree cache dropped 2 layers it no longer keeps');
      expect(await doctor()).to.include({ layers: 0 });
      expect(readdirSync(trees)).to.deep.equal([]);
    } finally {
      await server.stop();
    }
  });

  it('with builder.cache.trees 0 keeps nothing and builds as before', async () => {
    world.update({ builder: { cache: { trees: 0 } } });
    await app.commit(stage(1));
    await build();
    await app.commit(stage(2));
    const again = await build();
    expect(again.stdout).to.include('Unpacking current package');
    expect(existsSync(join(world.dir, 'state/trees')) ? readdirSync(join(world.dir, 'state/trees')) : []).to.deep.equal([]);
  });
});
