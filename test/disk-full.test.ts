/**
 * Disks that fill during a build, on small tmpfs mounts: a workdir too small
 * for what a build writes, and a storage too small for the image it stores.
 * The build fails with one line, and nothing half-written is left: no temp
 * folder, mount, loop device or storage temp file.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { World, metadata } from './helpers/world.ts';

/** Files left under `dir`, recursively (hidden ones included). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}

/** Loop devices whose backing file lies under `dir`. */
async function loopsUnder(dir: string): Promise<string[]> {
  const { stdout } = await execa('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE']);
  return String(stdout)
    .split('\n')
    .filter((line) => line.includes(dir));
}

describe('a disk that fills during a build', function () {
  this.timeout(180_000);
  let world: World;
  let mounts: string[];

  /** A tmpfs of `size` at a new temp folder, unmounted after the test. */
  async function tmpfs(size: string): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'upaas-small-'));
    await execa('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
    mounts.push(dir);
    return dir;
  }

  beforeEach(() => {
    mounts = [];
  });

  afterEach(async () => {
    try {
      const leftovers = world.leftovers();
      world.remove();
      expect(leftovers, 'left behind').to.deep.equal([]);
    } finally {
      // Whatever the world's removal did (a hung build keeps its files busy), the small disks go.
      for (const dir of mounts) {
        await execa('umount', ['--lazy', dir], { reject: false });
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('fails a build that fills its workdir and leaves nothing there', async () => {
    const workdir = await tmpfs('96m');
    world = new World({ paths: { workdir }, builder: { min_free: 0, workers: 1 } });
    const app = await world.app('filler');
    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'head -c 200000000 /dev/zero > big' } } }) });
    const result = await world.cli('build', 'filler');
    expect(result.exitCode, result.stdout).to.not.equal(0);
    const last = result.lines.filter(Boolean).pop() as string;
    // The volume was made no larger than the tmpfs had free: the write failed in the build, not later in the loop device.
    expect(last).to.match(/^!     user error: the build filled its disk: it may use [0-9]+ MiB, its share of what the workdir's disk had free beyond builder.min_free/);
    expect(last).to.not.include(workdir);
    expect(filesUnder(workdir)).to.deep.equal([]);
    expect(await loopsUnder(workdir)).to.deep.equal([]);
    const table = String((await execa('cat', ['/proc/self/mounts'])).stdout);
    expect(table.split('\n').filter((line) => line.split(' ')[1]?.startsWith(`${workdir}/`))).to.deep.equal([]);
    expect(await world.packages('filler')).to.deep.equal([]);
  });

  it('fails a build whose image does not fit in storage and leaves no half-written object', async () => {
    const storage = await tmpfs('1m');
    world = new World({ storage: { settings: { dir: storage } }, builder: { min_free: 0 } });
    const app = await world.app('tight');
    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' } }) });
    const result = await world.cli('build', 'tight');
    expect(result.exitCode).to.equal(2);
    const last = result.lines.filter(Boolean).pop() as string;
    expect(last).to.match(/^!     system error: .*(no space left|ENOSPC)/i);
    expect(last).to.not.include(storage);
    expect(filesUnder(storage).filter((f) => f !== '.tmp')).to.deep.equal([]);
    expect(await world.packages('tight')).to.deep.equal([]);
  });
});
