/**
 * Package archives in frames (src/archive/frames.ts): a whole pack is GNU
 * tar's `--sort=name` stream of the tree, byte for byte, in independently
 * decompressible frames; a pack over an overlay of a packed tree copies the
 * frames of the ranges it did not change and still gives that very stream.
 */
import { createReadStream, createWriteStream, chmodSync, linkSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { expect } from 'chai';
import { execa } from 'execa';
import { type FrameIndex, type PackOptions, type Packed, WhiteoutInTree, packTree, readFrameIndex } from '../src/archive/frames.ts';
import { TAR_CREATE } from '../src/archive/tar.ts';
import { listTree } from '../src/archive/tree-list.ts';

const SIZES = { whole: 256 * 1024, made: 64 * 1024 };

/**
 * What GNU tar itself writes for the whole tree in archive order, up to its
 * end blocks (the zero padding of its last record after them is not part of
 * a package: readers stop at the end blocks).
 */
async function referenceTar(root: string): Promise<Buffer> {
  const result = await execa('tar', [...TAR_CREATE, '--sort=name', '--one-file-system', '--blocking-factor=1', '--directory', root, '.'], {
    encoding: 'buffer',
    stripFinalNewline: false,
    maxBuffer: 2 ** 30,
  });
  return Buffer.from(result.stdout);
}

async function decompress(file: string, range?: { offset: number; bytes: number }): Promise<Buffer> {
  const bytes = readFileSync(file);
  const input = range ? bytes.subarray(range.offset, range.offset + range.bytes) : bytes;
  const result = await execa('zstd', ['-q', '-d', '-c'], { input, encoding: 'buffer', stripFinalNewline: false, maxBuffer: 2 ** 30 });
  return Buffer.from(result.stdout);
}

async function packTo(root: string, file: string, options: Partial<PackOptions> = {}): Promise<Packed> {
  const { stream, done } = packTree(root, { compression: 'zstd', level: 3, frameBytes: SIZES, ...options });
  const [, packed] = await Promise.all([pipeline(stream, createWriteStream(file)), done]);
  return packed;
}

const write = (path: string, bytes: number | string) => writeFileSync(path, typeof bytes === 'number' ? randomBytes(bytes) : bytes);

/** Runs `use` on an overlay (index=on, as builds mount them) over `lower`, with its merged folder and its upper layer; unmounted after. */
async function withOverlay(lower: string, use: (merged: string, upper: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'upaas-frames-overlay-'));
  const [upper, work, merged] = ['upper', 'work', 'merged'].map((name) => join(dir, name)) as [string, string, string];
  for (const folder of [upper, work, merged]) mkdirSync(folder);
  await execa('mount', ['-t', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work},index=on,redirect_dir=off,metacopy=off,xino=auto`, 'overlay', merged]);
  try {
    await use(merged, upper);
  } finally {
    await execa('umount', [merged]);
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('package archives in frames', function () {
  this.timeout(120_000);
  let dir: string;
  let lower: string;
  let upper: string;
  let merged: string;
  let mounted = false;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-frames-'));
    lower = join(dir, 'lower');
    // Names whose order differs between a bytewise sort of whole paths and tar's folder by folder.
    for (const folder of ['a', 'a.b', 'a b', 'a/b', 'a/b/deep', 'z', 'links', 'dev', 'big', 'long']) mkdirSync(join(lower, folder), { recursive: true });
    write(join(lower, 'a/one'), 'one\n');
    write(join(lower, 'a.b/two'), 'two\n');
    write(join(lower, 'a b/three'), 'three\n');
    write(join(lower, 'a/b/deep/four'), 'four\n');
    for (let n = 0; n < 48; n++) write(join(lower, 'big', `blob-${String(n).padStart(2, '0')}`), 40 * 1024);
    for (let n = 0; n < 8; n++) write(join(lower, 'z', `late-${n}`), 30 * 1024);
    // A name longer than a tar header holds (a pax `path` record), and one that is not UTF-8.
    write(join(lower, 'long', `${'x'.repeat(150)}.txt`), 'long\n');
    writeFileSync(Buffer.from(`${lower}/a/latin-\xe9`, 'latin1'), 'latin\n');
    // Hard-link groups whose names lie in far apart ranges.
    write(join(lower, 'a/head'), 'shared by a and z\n');
    linkSync(join(lower, 'a/head'), join(lower, 'z/tail'));
    write(join(lower, 'a/first'), 'first of two\n');
    linkSync(join(lower, 'a/first'), join(lower, 'big/blob-05-second'));
    // A group whose first name sits among the blobs (a range nothing else changes) and whose other name is last.
    write(join(lower, 'big/blob-12-head'), 'changed only through its other name\n');
    linkSync(join(lower, 'big/blob-12-head'), join(lower, 'z/tail-of-blob'));
    write(join(lower, 'links/target'), 'target\n');
    symlinkSync('/etc/os-release', join(lower, 'links/absolute'));
    await execa('mkfifo', [join(lower, 'dev/fifo')]);
    await execa('mknod', [join(lower, 'dev/null'), 'c', '1', '3']);
    write(join(lower, 'a/setuid'), '#!/bin/sh\n');
    chmodSync(join(lower, 'a/setuid'), 0o4755);
    await execa('setfattr', ['-n', 'user.upaas', '-v', 'kept', join(lower, 'a/setuid')]).catch(async () =>
      execa('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], "user.upaas", b"kept")', join(lower, 'a/setuid')]),
    );
    upper = join(dir, 'upper');
    merged = join(dir, 'merged');
    for (const folder of [upper, join(dir, 'work'), merged]) mkdirSync(folder);
  });

  after(async () => {
    if (mounted) await execa('umount', [merged]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('packs a whole tree as tar --sort=name writes it, in frames that each decompress alone', async () => {
    const file = join(dir, 'whole.tar.zst');
    const { index, reused } = await packTo(lower, file);
    expect(reused).to.equal(0);
    expect(index.frames.length, 'frames').to.be.above(3);
    expect((await decompress(file)).equals(await referenceTar(lower)), 'the same bytes as tar --sort=name').to.equal(true);
    let raw = 0;
    for (const frame of index.frames) {
      const alone = await decompress(file, frame);
      expect(alone.length).to.equal(frame.raw);
      raw += alone.length;
    }
    expect(raw % 512).to.equal(0);
    expect(await decompress(file, index.end)).to.deep.equal(Buffer.alloc(1024));
    expect(readFrameIndex(JSON.stringify(index))).to.deep.equal(index);
    expect(readFrameIndex('{"version":2}')).to.equal(null);
  });

  it('copies the frames of what an overlay left alone and gives the stream a whole pack of it gives', async () => {
    const before = join(dir, 'before.tar.zst');
    const { index } = await packTo(lower, before);
    await execa('mount', ['-t', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${join(dir, 'work')},index=on,redirect_dir=off,metacopy=off,xino=auto`, 'overlay', merged]);
    mounted = true;
    // Changes in a few ranges: data, a new file, a removed one, a mode, a folder renamed (copied: redirect_dir=off).
    appendFileSync(join(merged, 'a/one'), 'more\n');
    write(join(merged, 'a/b/new'), 'new\n');
    unlinkSync(join(merged, 'a.b/two'));
    chmodSync(join(merged, 'a b/three'), 0o600);
    await execa('mv', [join(merged, 'a/b/deep'), join(merged, 'a/b/moved')]);
    // Through the later name of a group: the data belongs to the first name's member, in another range.
    appendFileSync(join(merged, 'z/tail'), 'changed through the tail\n');
    appendFileSync(join(merged, 'z/tail-of-blob'), 'and this one too\n');
    // The first name of a group goes: its other name, in a range untouched by name, becomes the file.
    unlinkSync(join(merged, 'a/first'));
    const changed = (await listTree(upper)).map((entry) => entry.key);
    const file = join(dir, 'after.tar.zst');
    const packed = await packTo(merged, file, { reuse: { index, changed, archive: async () => createReadStream(before) } });
    const reference = await referenceTar(merged);
    expect((await decompress(file)).equals(reference), 'the same bytes as tar --sort=name of the merged tree').to.equal(true);
    expect(packed.reused, 'frames copied').to.be.above(0);
    expect(packed.reused, 'frames copied').to.be.below(packed.index.frames.length);
    const listing = String((await execa('tar', ['-tvf', '-'], { input: reference })).stdout);
    expect(listing).to.match(/^-\S+ \S+ +\d+ .* \.\/big\/blob-05-second$/m);
    expect(listing).not.to.match(/second link to/);

    // A pack with nothing changed but the root copies every other frame.
    const again = join(dir, 'again.tar.zst');
    // The package before opens late (storage makes its stream after an await): tar's first bytes wait meanwhile.
    const late = async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return createReadStream(file);
    };
    const unchanged = await packTo(merged, again, { reuse: { index: packed.index, changed: [Buffer.from('.')], archive: late } });
    expect(unchanged.reused).to.equal(unchanged.index.frames.length - 1);
    expect((await decompress(again)).equals(reference)).to.equal(true);
  });

  it('remakes every range of a hard-link group changed through its first name (the later names are link members with its mode, owner and time)', async () => {
    const base = join(dir, 'head-lower');
    mkdirSync(join(base, 'a'), { recursive: true });
    mkdirSync(join(base, 'z'));
    write(join(base, 'a/head'), 'shared\n');
    linkSync(join(base, 'a/head'), join(base, 'z/tail'));
    // Ranges between the two names that nothing changes.
    for (let n = 0; n < 24; n++) write(join(base, `m-${String(n).padStart(2, '0')}`), 40 * 1024);
    const before = join(dir, 'head-before.tar.zst');
    const { index } = await packTo(base, before);
    for (const change of [(m: string) => chmodSync(join(m, 'a/head'), 0o4711), (m: string) => appendFileSync(join(m, 'a/head'), 'more\n')]) {
      await withOverlay(base, async (over, top) => {
        change(over);
        const changed = (await listTree(top)).map((entry) => entry.key);
        const file = join(dir, 'head-after.tar.zst');
        const packed = await packTo(over, file, { reuse: { index, changed, archive: async () => createReadStream(before) } });
        expect(packed.reused, 'frames copied').to.be.above(0);
        expect((await decompress(file)).equals(await referenceTar(over)), 'the same bytes as tar --sort=name of the merged tree').to.equal(true);
      });
    }
  });

  it('packs the whole tree, without reading the archive before, when it would copy less of it than it makes', async () => {
    const base = join(dir, 'rewritten-lower');
    mkdirSync(base);
    for (let n = 0; n < 24; n++) write(join(base, `blob-${String(n).padStart(2, '0')}`), 40 * 1024);
    const before = join(dir, 'rewritten-before.tar.zst');
    const { index } = await packTo(base, before);
    await withOverlay(base, async (over, top) => {
      // Most of the tree rewritten, as an interpreter installed over the image rewrites it.
      for (let n = 0; n < 20; n++) appendFileSync(join(over, `blob-${String(n).padStart(2, '0')}`), 'more\n');
      const changed = (await listTree(top)).map((entry) => entry.key);
      let opened = false;
      const archive = async () => {
        opened = true;
        return createReadStream(before);
      };
      const file = join(dir, 'rewritten-after.tar.zst');
      const packed = await packTo(over, file, { reuse: { index, changed, archive } });
      expect(packed.reused).to.equal(0);
      expect(opened, 'the archive before was read').to.equal(false);
      expect((await decompress(file)).equals(await referenceTar(over))).to.equal(true);
    });
  });

  it('writes a sparse file the same way in every pack (tar names its member after its own PID)', async () => {
    const base = join(dir, 'sparse-lower');
    mkdirSync(base);
    await execa('truncate', ['-s', '8M', join(base, 'sparse')]);
    await execa('dd', ['if=/dev/urandom', `of=${join(base, 'sparse')}`, 'bs=4096', 'count=1', 'seek=100', 'conv=notrunc'], { stderr: 'ignore' });
    const [one, two] = [join(dir, 'sparse-1.tar.zst'), join(dir, 'sparse-2.tar.zst')];
    await packTo(base, one);
    await packTo(base, two);
    const [first, second] = [await decompress(one), await decompress(two)];
    expect(first.includes(Buffer.from('GNUSparseFile')), 'stored as a sparse member').to.equal(true);
    expect(first.equals(second), 'two packs of one tree').to.equal(true);
  });

  it('refuses a tree holding an overlayfs whiteout, also before anything reads the stream', async () => {
    const base = join(dir, 'whiteout-lower');
    mkdirSync(base);
    await execa('mknod', [join(base, 'gone'), 'c', '0', '0']);
    const { stream, done } = packTree(base, { compression: 'zstd', level: 3, frameBytes: SIZES });
    const refused = await done.then(() => null, (error: Error) => error);
    expect(refused).to.be.instanceOf(WhiteoutInTree);
    expect(refused?.message).to.include('"/gone"');
    // The consumer comes late (storage opens its file first): it gets the failure, and the process lives on.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const read = await pipeline(stream, createWriteStream(join(dir, 'whiteout.tar.zst'))).then(() => null, (error: Error) => error);
    expect(read).to.be.instanceOf(WhiteoutInTree);
  });

  it('fails when the package before fails its check, and when a frame index does not fit the archive', async () => {
    const before = join(dir, 'check.tar.zst');
    const { index } = await packTo(lower, before);
    // A stream that errors at its end, as storage's check of a hash does.
    const failing = async (): Promise<Readable> => {
      const bytes = readFileSync(before);
      let sent = false;
      return new Readable({
        read() {
          if (sent) this.destroy(new Error('checksum mismatch'));
          else this.push(bytes.subarray(0, bytes.length - 1));
          sent = true;
        },
      });
    };
    let error = null as Error | null;
    await packTo(lower, join(dir, 'bad.tar.zst'), { reuse: { index, changed: [Buffer.from('.')], archive: failing } }).catch((caught: Error) => (error = caught));
    expect(error?.message).to.include('checksum mismatch');
    const shifted: FrameIndex = { ...index, frames: index.frames.map((frame) => ({ ...frame, offset: frame.offset + 7 })) };
    error = null;
    await packTo(lower, join(dir, 'bad2.tar.zst'), { reuse: { index: shifted, changed: [Buffer.from('.')], archive: async () => createReadStream(before) } }).catch(
      (caught: Error) => (error = caught),
    );
    expect(error, 'a frame copied from the wrong place is caught by the check of its bytes').to.not.equal(null);
  });
});
