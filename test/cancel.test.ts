/**
 * Cancelling a build (what a stopping server does once builder.grace is over):
 * every step stops, the archive programs (tar | zstd) too, and the build
 * fails as a system error that says so, storing nothing.
 */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Transform } from 'node:stream';
import { expect } from 'chai';
import { build } from '../src/builder/builder.ts';
import { loadConfig } from '../src/config/config.ts';
import type { PackageRecord } from '../src/state/packages.ts';
import { State } from '../src/state/state.ts';
import type { StoredObject } from '../src/storage/handler.ts';
import { createStorage } from '../src/storage/index.ts';
import { World, metadata } from './helpers/world.ts';

const CANCELLED = '!     system error: the build was cancelled (the server is stopping or the caller went away)';

describe('cancelling a build (fixture image)', function () {
  this.timeout(120_000);
  let world: World;

  beforeEach(() => {
    world = new World();
  });

  afterEach(() => {
    const leftovers = world.leftovers();
    world.remove();
    expect(leftovers, 'left behind by the build').to.deep.equal([]);
  });

  /**
   * Builds `app` in this process and cancels it the moment a line with `step`
   * appears (null: the moment its package archive is stored, after which
   * `onStored` runs). Counts the bytes read from storage: an unpack that was
   * stopped reads less than the whole archive.
   */
  async function buildCancelledAt(app: string, step: string | null, fresh = false, onStored?: (stored: StoredObject, state: State) => void) {
    const config = loadConfig(world.configFile);
    const state = State.open(config.paths.state);
    try {
      const storage = createStorage(config);
      const reads: { key: string; bytes: number }[] = [];
      const get = storage.get.bind(storage);
      storage.get = async (key: string) => {
        const read = { key, bytes: 0 };
        reads.push(read);
        const counter = new Transform({
          transform(chunk: Buffer, _encoding, done) {
            read.bytes += chunk.length;
            done(null, chunk);
          },
        });
        return (await get(key)).pipe(counter);
      };
      const controller = new AbortController();
      const put = storage.put.bind(storage);
      storage.put = async (key, body) => {
        const stored = await put(key, body);
        if (step === null && stored.key.startsWith('packages/')) {
          controller.abort();
          onStored?.(stored, state);
        }
        return stored;
      };
      const lines: string[] = [];
      const outcome = await build(
        { config, state, storage },
        {
          app,
          fresh,
          signal: controller.signal,
          onLine: (line) => {
            lines.push(line);
            if (step !== null && line.includes(step)) controller.abort();
          },
        },
      );
      return { outcome, lines, reads, state, storage };
    } finally {
      state.close();
    }
  }

  async function appWithPackage(name: string) {
    const app = await world.app(name);
    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' } }) });
    const first = await world.cli('build', name);
    expect(first.exitCode, first.stdout + first.stderr).to.equal(0);
    return { app, before: await world.packages(name) };
  }

  const packageFiles = (name: string) => {
    const dir = join(world.storageDir, 'packages', name);
    return existsSync(dir) ? readdirSync(dir).sort() : [];
  };

  it('stops the package archive (tar | zstd): nothing is stored, the current package stays', async () => {
    const { before } = await appWithPackage('archiving');
    const files = packageFiles('archiving');
    const { outcome, lines } = await buildCancelledAt('archiving', 'Creating package archive');
    expect(outcome.ok, lines.join('\n')).to.equal(false);
    expect(lines.at(-1)).to.equal(CANCELLED);
    expect(await world.packages('archiving')).to.deep.equal(before);
    expect(packageFiles('archiving'), 'no half-written or complete archive kept').to.deep.equal(files);
  });

  it('a build cancelled once its archive is stored makes nothing current and removes the archive', async () => {
    const { app, before } = await appWithPackage('late');
    const files = packageFiles('late');
    await app.commit({ 'more.txt': 'more\n' });
    const { outcome, lines } = await buildCancelledAt('late', null);
    expect(outcome.ok, lines.join('\n')).to.equal(false);
    expect(lines.at(-1)).to.equal(CANCELLED);
    expect(await world.packages('late')).to.deep.equal(before);
    expect(packageFiles('late'), 'the stored archive removed').to.deep.equal(files);
  });

  it('a build cancelled once its archive is stored keeps the file when a package of the app is that very archive', async () => {
    await appWithPackage('same');
    let same = '';
    // As if a build byte for byte the same had recorded it: the file is that package's now.
    const { outcome, lines } = await buildCancelledAt('same', null, false, (stored, state) => {
      same = basename(stored.key);
      const current = state.packages.current('same') as PackageRecord;
      state.packages.addAsCurrent({ ...current, id: stored.sha256, storageKey: stored.key, bytes: stored.bytes, buildId: null }, null);
    });
    expect(outcome.ok, lines.join('\n')).to.equal(false);
    expect(lines.at(-1)).to.equal(CANCELLED);
    expect(packageFiles('same'), 'the recorded package keeps its file').to.include(same);
  });

  it('stops unpacking the current package, before the whole archive is read; with the cache on, no half-made layer stays', async () => {
    for (const cache of [0, 8]) {
      world.update({ builder: { cache: { trees: cache } } });
      const name = `unpacking${cache}`;
      const { before } = await appWithPackage(name);
      // Its cached tree gone: the build unpacks the package into a new layer.
      const trees = join(world.dir, 'state/trees');
      rmSync(trees, { recursive: true, force: true });
      const { outcome, lines, reads } = await buildCancelledAt(name, 'Unpacking current package');
      expect(outcome.ok).to.equal(false);
      expect(lines.at(-1)).to.equal(CANCELLED);
      expect(reads).to.have.length(1);
      expect(reads[0]?.bytes, 'bytes read of the package').to.be.below(before[0]?.bytes as number);
      expect(await world.packages(name)).to.deep.equal(before);
      expect(existsSync(trees) ? readdirSync(trees) : [], 'no layer left').to.deep.equal([]);
    }
  });

  it('stops unpacking the system image, and does not take the image for broken', async () => {
    // With the cache on, the image's tree is cached: nothing to unpack.
    world.update({ builder: { cache: { trees: 0 } } });
    await appWithPackage('imaging');
    const { outcome, lines, reads } = await buildCancelledAt('imaging', 'Unpacking system image', true);
    expect(outcome.ok).to.equal(false);
    expect(lines.at(-1)).to.equal(CANCELLED);
    expect(lines.join('\n')).not.to.include('rebuilding it');
    expect(lines.join('\n')).not.to.include('Building the system image');
    const image = reads.find((read) => read.key.startsWith('images/'));
    expect(image, 'the image was opened').to.not.equal(undefined);
    expect(image?.bytes, 'bytes read of the image').to.be.below(statSync(join(world.storageDir, image?.key as string)).size);
  });
});
