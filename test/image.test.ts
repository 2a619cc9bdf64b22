/** Step 1's image cache: reused while valid, rebuilt when broken or too old. */
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { World, fastConfig, metadata } from './helpers/world.ts';

describe('system image cache (fixture image)', function () {
  this.timeout(120_000);
  let storage: string;
  let world: World;

  beforeEach(() => {
    storage = mkdtempSync(join(tmpdir(), 'upaas-image-storage-'));
    world = new World({}, fastConfig(storage));
  });

  afterEach(() => {
    const leftovers = world.leftovers();
    world.remove();
    rmSync(storage, { recursive: true, force: true });
    expect(leftovers).to.deep.equal([]);
  });

  const imageFile = () => {
    const [file] = readdirSync(join(storage, 'images')).filter((f) => f.endsWith('.tar.zst'));
    return join(storage, 'images', file as string);
  };

  async function buildTwice(breakIt: () => Promise<void> | void) {
    const app = await world.app('cached');
    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' } }) });
    const first = await world.cli('build', 'cached');
    expect(first.exitCode, first.stdout).to.equal(0);
    expect(first.stdout).to.include('Building the system image');
    const again = await world.cli('build', 'cached', '--fresh');
    expect(again.stdout, 'a valid image is reused').not.to.include('Building the system image');
    await breakIt();
    const result = await world.cli('build', 'cached', '--fresh');
    expect(result.exitCode, result.stdout).to.equal(0);
    expect(result.stdout).to.include('Building the system image');
    return result;
  }

  it('rebuilds an image in which /bin/true fails', async () => {
    const result = await buildTwice(async () => {
      const empty = mkdtempSync(join(tmpdir(), 'upaas-empty-'));
      await execa('mkdir', ['-p', join(empty, 'proc'), join(empty, 'dev'), join(empty, 'bin')]);
      const bytes = (await execa('sh', ['-c', 'tar -C "$1" -c . | zstd -q -c', 'x', empty], { encoding: 'buffer' })).stdout;
      writeFileSync(imageFile(), bytes);
      writeFileSync(`${imageFile()}.sha256`, `${createHash('sha256').update(bytes).digest('hex')}\n`);
      rmSync(empty, { recursive: true });
    });
    expect(result.stdout).to.match(/the cached image is broken \(\/bin\/true exited with status 125 in it: upaas sandbox: the image has no \/bin\/sh/);
  });

  it('rebuilds an image whose stored bytes no longer match their checksum', async () => {
    const result = await buildTwice(() => {
      const bytes = readFileSync(imageFile());
      bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0xff;
      writeFileSync(imageFile(), bytes);
    });
    expect(result.stdout).to.match(/the cached image is broken \(local storage: .* is corrupt/);
  });

  it('rebuilds an image older than bootstrap.maxage days', async () => {
    const result = await buildTwice(() => {
      const old = new Date(Date.now() - 8 * 24 * 3600 * 1000);
      utimesSync(imageFile(), old, old);
    });
    expect(result.stdout).to.include('System image is older than 7 days; rebuilding it');
  });

  it('a failing bootstrap command is a system error', async () => {
    world.remove();
    world = new World({ bootstrap: { commands: ['echo cannot reach the mirror >&2; exit 4'] } }, fastConfig(storage));
    const app = await world.app('cached');
    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' } }) });
    const result = await world.cli('build', 'cached');
    expect(result.exitCode).to.equal(2);
    expect(result.stdout).to.include('       cannot reach the mirror');
    expect(result.lines.filter(Boolean).pop()).to.equal(
      '!     system error: bootstrap command failed: `echo cannot reach the mirror >&2; exit 4` exited with status 4',
    );
  });
});
