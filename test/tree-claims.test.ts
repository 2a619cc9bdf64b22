/**
 * What the tree cache's collection (builder/tree-cache.ts) keeps for a build
 * that runs, on a real state: the layer it kept, claimed until it ends and
 * dropped then unless its package became current, and the tree of the
 * package it started from, which is current again when the build fails late
 * (a failed deploy) even after the build squashed its layer apart from it.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { TreeCache, type CachedTree } from '../src/builder/tree-cache.ts';
import { parseConfig } from '../src/config/config.ts';
import type { PackageRecord } from '../src/state/packages.ts';
import { State } from '../src/state/state.ts';

describe('tree cache: what running builds keep', () => {
  let dir: string;
  let state: State;
  let cache: TreeCache;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-claims-'));
    const config = parseConfig({ paths: { repos: join(dir, 'repos'), state: join(dir, 'state'), workdir: join(dir, 'work') } }, null);
    state = State.open(config.paths.state);
    cache = new TreeCache(config, state);
  });
  afterEach(() => {
    state.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Package `id` of web, made current by `buildId` (a record only: the cache never reads its file). */
  const makeCurrent = (id: string, buildId: number) => {
    const pkg: Omit<PackageRecord, 'current' | 'file'> = {
      app: 'web', id, parent: null, fresh: true, revision: 'a'.repeat(40), author: null, date: null, description: null, changelog: [],
      interpreter: { type: 'static', version: 'any' }, bytes: 1, storageKey: `packages/web/${id}.tar.zst`, compression: 'zstd',
      createdAt: new Date().toISOString(), metadata: {}, buildId,
    };
    return state.packages.addAsCurrent(pkg, null);
  };
  /** A layer of build `buildId` recorded (and claimed by it) as the tree of `source` over `parent`. */
  const keep = async (buildId: number, source: string, parent: CachedTree | null): Promise<CachedTree> => {
    const layer = await cache.newLayer('web', buildId);
    mkdirSync(layer.tree);
    return cache.add(layer, { parent, source, app: 'web' }, buildId, 1);
  };
  /** A build that made `id` current over `parent` and kept its layer. */
  const built = async (id: string, parent: CachedTree | null): Promise<CachedTree> => {
    const build = state.builds.start('web', { fresh: parent === null });
    const tree = await keep(build.id, id, parent);
    makeCurrent(id, build.id);
    state.builds.finish(build.id, { status: 'succeeded', packageId: id });
    return tree;
  };
  const sources = () => state.trees.all().map((layer) => layer.source).sort();
  const there = (tree: CachedTree) => existsSync(join(cache.folder, tree.layers[0]?.dir as string));

  it('keeps the layer a running build kept until it ends, and drops it then when its package never became current', async () => {
    await built('p1', null);
    const build = state.builds.start('web', { fresh: false });
    state.builds.update(build.id, { basePackage: 'p1' });
    const base = { layers: state.trees.take('p1', 'web', build.id) ?? [] };
    const kept = await keep(build.id, 'p2', base);
    expect(await cache.collect(null), 'collected while the build runs').to.deep.equal([]);
    expect(sources()).to.deep.equal(['p1', 'p2']);
    state.builds.finish(build.id, { status: 'failed', errorKind: 'system', errorMessage: 'x' });
    expect(await cache.collect(null)).to.deep.equal([kept.layers[0]?.dir]);
    expect(there(kept)).to.equal(false);
    expect(sources()).to.deep.equal(['p1']);
  });

  it('keeps the tree of the package a running build started from after it squashed its layer onto the bottom one, for a deploy that fails', async () => {
    const bottom = await built('p0', null);
    const over = await built('p1', bottom);
    const build = state.builds.start('web', { fresh: false });
    state.builds.update(build.id, { basePackage: 'p1' });
    expect(state.trees.take('p1', 'web', build.id)).to.have.length(2);
    // Squashed: the build's layer lies on the bottom layer alone, and its claim moves to it.
    const squashed = await keep(build.id, 'p2', bottom);
    const made = makeCurrent('p2', build.id);
    // Another app's retention while the deploy runs.
    expect(await cache.collect(null)).to.deep.equal([]);
    // The deploy fails: p1 is current again, and its tree is there for the next build.
    state.releases.fail('web', made.release.version, made.previous, 'deploy failed');
    state.builds.finish(build.id, { status: 'failed', errorKind: 'system', errorMessage: 'deploy failed' });
    expect(await cache.collect(null)).to.deep.equal([squashed.layers[0]?.dir]);
    const next = state.builds.start('web', { fresh: false });
    expect(state.trees.take('p1', 'web', next.id)?.map((layer) => layer.dir)).to.deep.equal(over.layers.map((layer) => layer.dir));
  });
});
