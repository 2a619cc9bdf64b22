/** A build's root as an overlay (src/sandbox/overlay.ts). */
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { Cleanup } from '../src/process/cleanup.ts';
import { mountOverlay } from '../src/sandbox/overlay.ts';

describe('build overlay', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-overlay-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("shows the top layer's mode, owner and times at its root, to the nanosecond", async () => {
    const lower = join(dir, 'lower');
    mkdirSync(lower);
    chmodSync(lower, 0o751);
    chownSync(lower, 1234, 5678);
    await execa('touch', ['-d', '@1600000000.123456789', lower]);
    for (const folder of ['overlay', 'root']) mkdirSync(join(dir, folder));
    const cleanup = new Cleanup();
    try {
      await mountOverlay(join(dir, 'overlay'), [lower], join(dir, 'root'), cleanup);
      const [below, merged] = [lstatSync(lower, { bigint: true }), lstatSync(join(dir, 'root'), { bigint: true })];
      expect({ mode: merged.mode, uid: merged.uid, gid: merged.gid, mtime: merged.mtimeNs }).to.deep.equal({ mode: below.mode, uid: below.uid, gid: below.gid, mtime: below.mtimeNs });
    } finally {
      await cleanup.close();
    }
  });
});
