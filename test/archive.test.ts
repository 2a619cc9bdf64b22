/** Package archives keep a system tree exactly (GNU tar + zstd/gzip). */
import { lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, statSync, writeFileSync, chmodSync, chownSync, linkSync, symlinkSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createReadStream } from 'node:fs';
import { expect } from 'chai';
import { execa } from 'execa';
import { type Compression, unpackTree } from '../src/archive/tar.ts';
import { packTree } from '../src/archive/frames.ts';

describe('package archives', function () {
  this.timeout(60_000);
  let dir: string;
  let source: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-archive-'));
    source = join(dir, 'source');
    mkdirSync(join(source, 'dev'), { recursive: true });
    mkdirSync(join(source, 'bin'));
    await execa('mknod', [join(source, 'dev/null'), 'c', '1', '3']);
    await execa('mknod', [join(source, 'dev/sda'), 'b', '8', '0']);
    await execa('mkfifo', [join(source, 'dev/fifo')]);
    writeFileSync(join(source, 'bin/tool'), '#!/bin/sh\n');
    chmodSync(join(source, 'bin/tool'), 0o4755);
    mkdirSync(join(source, 'shared'));
    chmodSync(join(source, 'shared'), 0o2775);
    chownSync(join(source, 'shared'), 1234, 5678);
    linkSync(join(source, 'bin/tool'), join(source, 'bin/tool-link'));
    symlinkSync('/etc/os-release', join(source, 'absolute-link'));
    await execa('truncate', ['-s', '64M', join(source, 'sparse')]);
    await execa('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], "user.upaas", b"kept")', join(source, 'bin/tool')]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const compression of ['zstd', 'gzip'] as Compression[]) {
    it(`round-trips device nodes, FIFOs, hard links, symlinks, modes, owners, xattrs and sparse files (${compression})`, async () => {
      const file = join(dir, `archive.${compression}`);
      const { stream, done } = packTree(source, { compression, level: 3 });
      await Promise.all([pipeline(stream, createWriteStream(file)), done]);
      const magic = (await execa('file', ['--brief', file], { reject: false })).stdout;
      if (magic) expect(String(magic).toLowerCase()).to.include(compression === 'zstd' ? 'zstandard' : 'gzip');

      const target = join(dir, `out-${compression}`);
      mkdirSync(target);
      await unpackTree(createReadStream(file), target, compression);

      const nul = lstatSync(join(target, 'dev/null'));
      expect(nul.isCharacterDevice()).to.equal(true);
      expect(nul.rdev).to.equal(lstatSync(join(source, 'dev/null')).rdev);
      expect(lstatSync(join(target, 'dev/sda')).isBlockDevice()).to.equal(true);
      expect(lstatSync(join(target, 'dev/fifo')).isFIFO()).to.equal(true);
      expect(statSync(join(target, 'bin/tool')).mode & 0o7777).to.equal(0o4755);
      expect(statSync(join(target, 'shared')).mode & 0o7777).to.equal(0o2775);
      expect(statSync(join(target, 'shared'))).to.include({ uid: 1234, gid: 5678 });
      expect(statSync(join(target, 'bin/tool-link')).ino).to.equal(statSync(join(target, 'bin/tool')).ino);
      expect(readlinkSync(join(target, 'absolute-link'))).to.equal('/etc/os-release');
      const sparse = statSync(join(target, 'sparse'));
      expect(sparse.size).to.equal(64 * 1024 * 1024);
      expect(sparse.blocks * 512).to.be.below(1024 * 1024);
      const xattr = await execa('python3', ['-c', 'import os,sys; print(os.getxattr(sys.argv[1], "user.upaas").decode())', join(target, 'bin/tool')]);
      expect(String(xattr.stdout)).to.equal('kept');
    });
  }

  it('fails the unpack when the source stream fails', async () => {
    const target = join(dir, 'out-broken');
    mkdirSync(target);
    const broken = createReadStream(join(dir, 'does-not-exist'));
    let error: unknown;
    await unpackTree(broken, target, 'zstd').catch((caught: unknown) => (error = caught));
    expect((error as Error).message).to.include('ENOENT');
  });

  it('loses nothing when the archive stream is read late', async () => {
    const { stream, done } = packTree(source, { compression: 'zstd', level: 3 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const target = join(dir, 'out-late');
    mkdirSync(target);
    await Promise.all([unpackTree(stream, target, 'zstd'), done]);
    expect(readlinkSync(join(target, 'absolute-link'))).to.equal('/etc/os-release');
  });
});
