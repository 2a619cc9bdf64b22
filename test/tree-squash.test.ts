/**
 * Squashing a cached tree's upper layers into one (src/builder/tree-squash.ts):
 * over the same bottom layer, the squashed layer shows the very tree the
 * stack showed, byte for byte as tar --sort=name writes it.
 */
import { appendFileSync, chmodSync, linkSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { TAR_CREATE } from '../src/archive/tar.ts';
import { squash } from '../src/builder/tree-squash.ts';

const OPTIONS = 'index=on,redirect_dir=off,metacopy=off,xino=auto';

/** What tar --sort=name writes of a tree (the package's bytes, uncompressed). */
async function tarOf(root: string): Promise<Buffer> {
  const result = await execa('tar', [...TAR_CREATE, '--sort=name', '--one-file-system', '--directory', root, '.'], { encoding: 'buffer', stripFinalNewline: false, maxBuffer: 2 ** 30 });
  return Buffer.from(result.stdout);
}

describe('squashing tree layers', function () {
  this.timeout(60_000);
  let dir: string;
  const mounts: string[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-squash-'));
  });
  afterEach(async () => {
    for (const target of mounts.splice(0).reverse()) await execa('umount', [target]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `change` on an overlay of `lowers` (top first), as a build does; returns its upper layer. */
  async function layer(name: string, lowers: string[], change: (root: string) => Promise<void> | void): Promise<string> {
    const [upper, work, merged] = ['upper', 'work', 'merged'].map((part) => join(dir, name, part)) as [string, string, string];
    for (const folder of [upper, work, merged]) mkdirSync(folder, { recursive: true });
    await execa('mount', ['-t', 'overlay', '-o', `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work},${OPTIONS}`, 'overlay', merged]);
    try {
      await change(merged);
    } finally {
      await execa('umount', [merged]);
    }
    return upper;
  }

  async function readOnly(name: string, lowers: string[]): Promise<string> {
    const target = join(dir, name);
    mkdirSync(target);
    await execa('mount', ['-t', 'overlay', '-o', `ro,lowerdir=${lowers.join(':')},redirect_dir=off,metacopy=off`, 'overlay', target]);
    mounts.push(target);
    return target;
  }

  it('gives one layer that shows, over the bottom layer, the tree the stack showed', async () => {
    const bottom = join(dir, 'bottom');
    for (const folder of ['etc', 'usr/lib/deep', 'opt/gone-dir/inner', 'opt/opaque/old', 'var/file-to-dir', 'srv']) mkdirSync(join(bottom, folder), { recursive: true });
    writeFileSync(join(bottom, 'etc/kept'), 'kept\n');
    writeFileSync(join(bottom, 'etc/changed'), 'before\n');
    writeFileSync(join(bottom, 'etc/removed'), 'removed\n');
    writeFileSync(join(bottom, 'usr/lib/deep/lib.so'), 'lib\n');
    writeFileSync(join(bottom, 'opt/gone-dir/inner/x'), 'x\n');
    writeFileSync(join(bottom, 'opt/opaque/old/o'), 'old\n');
    writeFileSync(join(bottom, 'opt/opaque/also-old'), 'old\n');
    writeFileSync(join(bottom, 'var/file-to-dir/f'), 'f\n');
    writeFileSync(join(bottom, 'srv/dir-to-file'), 'soon a folder\n');
    writeFileSync(Buffer.from(`${bottom}/srv/latin-\xe9`, 'latin1'), 'latin\n');

    const first = await layer('one', [bottom], async (root) => {
      appendFileSync(join(root, 'etc/changed'), 'after\n');
      unlinkSync(join(root, 'etc/removed'));
      rmSync(join(root, 'opt/gone-dir'), { recursive: true });
      // A folder removed and made again: opaque in this layer, its old entries hidden.
      rmSync(join(root, 'opt/opaque'), { recursive: true });
      mkdirSync(join(root, 'opt/opaque/new'), { recursive: true });
      writeFileSync(join(root, 'opt/opaque/new/n'), 'new\n');
      rmSync(join(root, 'var/file-to-dir'), { recursive: true });
      writeFileSync(join(root, 'var/file-to-dir'), 'a file now\n');
      unlinkSync(join(root, 'srv/dir-to-file'));
      mkdirSync(join(root, 'srv/dir-to-file/sub'), { recursive: true });
      writeFileSync(join(root, 'srv/dir-to-file/sub/s'), 's\n');
      mkdirSync(join(root, 'app/data'), { recursive: true });
      writeFileSync(join(root, 'app/data/a'), 'a\n');
      linkSync(join(root, 'app/data/a'), join(root, 'app/a-link'));
      symlinkSync('/etc/kept', join(root, 'app/symlink'));
      writeFileSync(join(root, 'app/temporary'), 'gone in the next layer\n');
      await execa('mkfifo', [join(root, 'app/fifo')]);
      await execa('setfattr', ['-n', 'user.upaas', '-v', 'kept', join(root, 'app/data/a')]).catch(async () =>
        execa('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], "user.upaas", b"kept")', join(root, 'app/data/a')]),
      );
    });
    const second = await layer('two', [first, bottom], async (root) => {
      unlinkSync(join(root, 'app/temporary'));
      writeFileSync(join(root, 'etc/removed'), 'back again\n');
      chmodSync(join(root, 'usr/lib/deep'), 0o700);
      renameSync(join(root, 'app/data/a'), join(root, 'app/data/b'));
      writeFileSync(Buffer.from(`${root}/srv/latin-\xe9`, 'latin1'), 'changed\n');
      // A folder of the bottom layer made opaque again, one layer later.
      rmSync(join(root, 'usr/lib'), { recursive: true });
      mkdirSync(join(root, 'usr/lib'));
      writeFileSync(join(root, 'usr/lib/only'), 'only\n');
      await execa('touch', ['-d', '@1600000000.123456789', join(root, 'etc')]);
    });

    const stack = await readOnly('stack', [second, first, bottom]);
    const into = join(dir, 'squashed');
    mkdirSync(into);
    await squash({ merged: stack, bottom, uppers: [second, first], into });
    const squashed = await readOnly('result', [into, bottom]);
    const [expected, actual] = [await tarOf(stack), await tarOf(squashed)];
    const listing = async (bytes: Buffer) => String((await execa('tar', ['-tv', '--full-time', '--numeric-owner'], { input: bytes })).stdout);
    expect(await listing(actual)).to.equal(await listing(expected));
    expect(actual.equals(expected), 'the same bytes as tar --sort=name of the stack').to.equal(true);
    // Whiteouts only where the bottom layer has something to hide; no opaque mark.
    const whiteouts = String((await execa('find', [into, '-type', 'c', '-printf', '%P\n'])).stdout).split('\n').sort();
    expect(whiteouts).to.deep.equal(['opt/gone-dir', 'opt/opaque/also-old', 'opt/opaque/old', 'usr/lib/deep'].sort());
  });
});
