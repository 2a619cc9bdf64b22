/** Step 1's image cache: reused while valid, rebuilt when broken or too old. */
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { build } from '../src/builder/builder.ts';
import { loadConfig } from '../src/config/config.ts';
import { State } from '../src/state/state.ts';
import { createStorage } from '../src/storage/index.ts';
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
    // The bytes are read when the image's tree is not cached (evicted, or the cache off); a cached tree was made from good ones.
    world.update({ builder: { cache: { trees: 0 } } });
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

  it('two builds that need the same missing image make it once: the second waits and reuses it', async () => {
    for (const name of ['first', 'second']) {
      const app = await world.app(name);
      await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' } }) });
    }
    const config = loadConfig(world.configFile);
    const state = State.open(config.paths.state);
    try {
      const services = { config, state, storage: createStorage(config) };
      const logs: Record<string, string[]> = { first: [], second: [] };
      const outcomes = await Promise.all(
        ['first', 'second'].map((app) => build(services, { app, onLine: (line) => logs[app]?.push(line) })),
      );
      for (const outcome of outcomes) expect(outcome.ok).to.equal(true);
      const made = Object.values(logs).filter((lines) => lines.some((l) => l.includes('Building the system image')));
      const waited = Object.values(logs).filter((lines) => lines.some((l) => l.includes('Waiting for the system image')));
      expect(made, 'one build makes the image').to.have.length(1);
      expect(waited, 'the other waits for it').to.have.length(1);
      // The maker's tree of the image is in the tree cache by then.
      expect(waited[0]?.some((l) => l.startsWith('-----> Using the cached tree of the system image'))).to.equal(true);
      expect(readdirSync(join(storage, 'images')).filter((f) => f.endsWith('.tar.zst'))).to.have.length(1);
    } finally {
      state.close();
    }
  });
});
