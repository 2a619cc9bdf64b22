/**
 * core/download.ts without a server: Range headers against a size, and
 * archives read whole or in part from real local storage, checked against
 * the package id, never handing over every byte of a corrupt file.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { expect } from 'chai';
import { CorruptArchiveError, openArchive, rangeOf } from '../src/core/download.ts';
import type { PackageRecord } from '../src/state/packages.ts';
import { LocalStorage } from '../src/storage/local.ts';

describe('package downloads (core)', () => {
  it('reads Range headers as RFC 9110 does, for one range', () => {
    expect(rangeOf(undefined, 100)).to.equal(null);
    expect(rangeOf('bytes=0-9', 100)).to.deep.equal({ start: 0, end: 9 });
    expect(rangeOf('bytes=90-', 100)).to.deep.equal({ start: 90, end: 99 });
    expect(rangeOf('bytes=-10', 100)).to.deep.equal({ start: 90, end: 99 });
    expect(rangeOf('bytes=-500', 100)).to.deep.equal({ start: 0, end: 99 });
    expect(rangeOf('bytes=50-500', 100)).to.deep.equal({ start: 50, end: 99 });
    expect(rangeOf('bytes=100-', 100)).to.equal('unsatisfiable');
    expect(rangeOf('bytes=-0', 100)).to.equal('unsatisfiable');
    // Not a single byte range this server serves: answered whole.
    expect(rangeOf('bytes=0-1,5-6', 100)).to.equal(null);
    expect(rangeOf('items=0-1', 100)).to.equal(null);
    expect(rangeOf('bytes=9-3', 100)).to.equal(null);
    expect(rangeOf('bytes=-', 100)).to.equal(null);
  });

  describe('from local storage', () => {
    let dir: string;
    let storage: LocalStorage;
    // Several read chunks (1 MiB each), so holding the last one back is seen.
    const body = Buffer.alloc(3 * 1024 * 1024 + 12345);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7919) % 251;
    const id = createHash('sha256').update(body).digest('hex');
    let pkg: PackageRecord;

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'upaas-download-'));
      storage = new LocalStorage(dir);
      const stored = await storage.put(`packages/web/${id}.tar.zst`, Readable.from([body]));
      pkg = { app: 'web', id, storageKey: stored.key } as PackageRecord;
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('gives the whole archive or exactly the bytes of a range', async () => {
      const whole = await openArchive({ storage }, pkg);
      expect(whole.bytes).to.equal(body.length);
      expect((await buffer(whole.stream)).equals(body)).to.equal(true);
      for (const range of [
        { start: 0, end: 0 },
        { start: 1024 * 1024 - 1, end: 1024 * 1024 },
        { start: 5, end: body.length - 1 },
        { start: body.length - 1, end: body.length - 1 },
      ]) {
        const part = await openArchive({ storage }, pkg, range);
        expect((await buffer(part.stream)).equals(body.subarray(range.start, range.end + 1)), JSON.stringify(range)).to.equal(true);
      }
    });

    it('stops a corrupt archive short with an error, whole or in part, and refuses a file that is not the package', async () => {
      const file = join(dir, pkg.storageKey);
      const bad = Buffer.from(body);
      bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
      writeFileSync(file, bad);
      for (const range of [null, { start: 0, end: 10 }]) {
        const archive = await openArchive({ storage }, pkg, range);
        let got = 0;
        archive.stream.on('data', (chunk: Buffer) => (got += chunk.length));
        const error = await new Promise<unknown>((resolve) => {
          archive.stream.on('error', resolve);
          archive.stream.on('end', () => resolve(null));
        });
        expect(error, JSON.stringify(range)).to.be.instanceOf(CorruptArchiveError);
        expect((error as Error).message).to.match(/^the stored file of package [0-9a-f]{12} of web does not match its SHA-256; the download was stopped/);
        expect(got, 'fewer bytes than asked for').to.be.below(range ? 11 : body.length);
      }
      // A sidecar that names another hash: refused before any byte.
      writeFileSync(`${file}.sha256`, `${'0'.repeat(64)}\n`);
      let refused: unknown;
      await openArchive({ storage }, pkg).catch((error: unknown) => (refused = error));
      expect(refused).to.be.instanceOf(CorruptArchiveError);
    });
  });
});
