/** The local storage handler: atomic, hashed writes and verified reads. */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { expect } from 'chai';
import { execa } from 'execa';
import { LocalStorage } from '../src/storage/local.ts';
import { StorageError } from '../src/storage/handler.ts';

describe('local storage', () => {
  let dir: string;
  let storage: LocalStorage;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-storage-'));
    storage = new LocalStorage(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes, names by hash, stats, lists, reads and deletes', async () => {
    const body = 'hello package\n';
    const sha = createHash('sha256').update(body).digest('hex');
    const stored = await storage.put((digest) => `packages/app/${digest}.tar.zst`, Readable.from([body]));
    expect(stored).to.include({ key: `packages/app/${sha}.tar.zst`, bytes: body.length, sha256: sha });
    expect(await storage.exists(stored.key)).to.equal(true);
    expect((await storage.list('packages')).map((o) => o.key)).to.deep.equal([stored.key]);
    expect(await text(await storage.get(stored.key))).to.equal(body);
    await storage.delete(stored.key);
    expect(await storage.stat(stored.key)).to.equal(null);
    expect(readdirSync(join(dir, '.tmp'))).to.deep.equal([]);
  });

  it('keeps its folder root-only, whatever mode it had', async () => {
    const folder = join(dir, 'store');
    mkdirSync(folder, { mode: 0o755 });
    await new LocalStorage(folder).put('images/x.tar.zst', Readable.from(['x']));
    expect(statSync(folder).mode & 0o777).to.equal(0o700);
  });

  it('fails a read whose bytes do not match the recorded hash', async () => {
    const stored = await storage.put('images/x.tar.zst', Readable.from(['original bytes']));
    writeFileSync(join(dir, stored.key), 'tampered bytes');
    let error: unknown;
    try {
      await text(await storage.get(stored.key));
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(StorageError);
    expect((error as Error).message).to.match(/images\/x\.tar\.zst is corrupt/);
  });

  it('reads an object only as the one asked for: another written under its key since fails', async () => {
    const first = await storage.put('images/x.tar.zst', Readable.from(['the image a build saw']));
    expect(await text(await storage.get(first.key, first.sha256))).to.equal('the image a build saw');
    // Made again under the same key between a caller's stat and its read.
    await storage.put('images/x.tar.zst', Readable.from(['the image made since']));
    let error: unknown;
    try {
      await text(await storage.get(first.key, first.sha256));
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(StorageError);
    expect((error as Error).message).to.match(/images\/x\.tar\.zst is not the object asked for/);
  });

  it('leaves nothing under the key when the source stream fails', async () => {
    const failing = new Readable({
      read() {
        this.push('partial');
        this.destroy(new Error('source broke'));
      },
    });
    let error: unknown;
    await storage.put('packages/app/broken', failing).catch((caught: unknown) => (error = caught));
    expect((error as Error).message).to.include('source broke');
    expect(await storage.exists('packages/app/broken')).to.equal(false);
    expect(readdirSync(join(dir, '.tmp'))).to.deep.equal([]);
  });

  it('sweeps the temp files of writers that are gone, and only those', async () => {
    const tmp = join(dir, '.tmp');
    mkdirSync(tmp);
    const gone = await execa('sh', ['-c', 'echo $$']);
    const writer = execa('sleep', ['60']);
    try {
      const dead = `${gone.stdout}-1700000000000-abc`;
      const live = `${writer.pid}-1700000000000-def`;
      // A file named with the sweeper's own PID is a dead predecessor's: it has written nothing yet.
      const predecessor = `${process.pid}-1700000000000-ghi`;
      for (const name of [dead, `${dead}.sha256`, live, predecessor, 'stray']) writeFileSync(join(tmp, name), 'half');
      expect((await storage.sweep()).sort()).to.deep.equal([dead, `${dead}.sha256`, predecessor, 'stray'].map((name) => join(tmp, name)).sort());
      expect(readdirSync(tmp)).to.deep.equal([live]);
    } finally {
      writer.kill();
      await writer.catch(() => undefined);
    }
    expect(await new LocalStorage(join(dir, 'never-written')).sweep()).to.deep.equal([]);
  });

  it('refuses keys that leave the store', async () => {
    for (const key of ['../x', '/etc/passwd', 'a//b', 'a/./b', '']) {
      let error: unknown;
      await storage.stat(key).catch((caught: unknown) => (error = caught));
      expect(error, key).to.be.instanceOf(StorageError);
    }
  });
});
