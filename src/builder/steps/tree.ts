/**
 * The build's root from the tree cache (builder/tree-cache.ts): a cached
 * tree mounted as the lower layers of an overlay whose upper layer is on the
 * build's volume; an archive unpacked into a new cached layer first when its
 * tree is not cached (or straight into the root with the cache off); and,
 * once the package is current, the build's upper layer kept as one more layer
 * of the new package's tree.
 */
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { type Compression, unpackTree } from '../../archive/tar.ts';
import { runChecked } from '../../process/run.ts';
import { mountOverlay } from '../../sandbox/overlay.ts';
import { removeTree } from '../../sandbox/mounts.ts';
import type { BuildContext } from '../context.ts';
import { type CachedTree, MAX_LAYERS } from '../tree-cache.ts';

/** Mounts `tree` at the build's root, with an upper layer of its own on the volume. */
export async function mountTree(ctx: BuildContext, tree: CachedTree): Promise<void> {
  const dir = await mkdtemp(join(ctx.jail.treeDir, 'overlay-'));
  ctx.base = { tree, overlay: await mountOverlay(dir, tree.folders, ctx.root, ctx.cleanup) };
}

/** Undoes mountTree (a cached image found broken): the root is an empty folder again. */
export async function unmountTree(ctx: BuildContext): Promise<void> {
  await ctx.base?.overlay.unmount();
  ctx.base = null;
  await removeTree(ctx.root);
  await mkdir(ctx.root, { mode: 0o755 });
}

/**
 * Unpacks the stored archive `key` as the build's base: into a new cached
 * layer (the tree of `source`: a package id, or the image's hash; `app` null
 * for the image) that the root then is an overlay of, or with the cache off
 * into the root itself.
 */
export async function unpackBase(ctx: BuildContext, key: string, compression: Compression, source: string, app: string | null): Promise<void> {
  if (!ctx.cache.enabled) {
    await unpackTree(await ctx.storage.get(key), ctx.root, compression, ctx.signal, ctx.jail.cgroupProcs);
    return;
  }
  const layer = await ctx.cache.newLayer(ctx.app, ctx.buildId);
  let recorded = false;
  ctx.cleanup.defer('an unfinished tree layer', async () => {
    if (!recorded) await ctx.cache.discard(layer);
  });
  await mkdir(layer.tree, { mode: 0o755 });
  await unpackTree(await ctx.storage.get(key), layer.tree, compression, ctx.signal, ctx.jail.cgroupProcs);
  const tree = await ctx.cache.add(layer, { parent: null, source, app }, ctx.buildId);
  recorded = true;
  await mountTree(ctx, tree);
}

/**
 * Keeps the tree of the package this build made: its upper layer, copied off
 * the volume (what the build changed, whiteouts and opaque marks included),
 * over the layers it was mounted on. Not when the stack is as deep as it may
 * grow, nor when a copied-up hard link made the upper layer incomplete (the
 * next build unpacks the package again instead). Call once the package is
 * current and its archive is made.
 */
export async function keepTree(ctx: BuildContext, packageId: string): Promise<void> {
  const base = ctx.base;
  if (base === null || !ctx.cache.enabled) return;
  await base.overlay.unmount();
  if (base.tree.layers.length >= MAX_LAYERS || (await base.overlay.copiedUpHardLinks())) return;
  const layer = await ctx.cache.newLayer(ctx.app, ctx.buildId);
  let recorded = false;
  ctx.cleanup.defer('an unfinished tree layer', async () => {
    if (!recorded) await ctx.cache.discard(layer);
  });
  await runChecked('cannot copy the build tree into the cache', 'cp', [
    '-dR',
    '--preserve=mode,ownership,timestamps,links,xattr',
    '--no-target-directory',
    '--',
    base.overlay.upper,
    layer.tree,
  ], { timeoutSeconds: ctx.config.commands.timelimit });
  await ctx.cache.add(layer, { parent: base.tree, source: packageId, app: ctx.app });
  recorded = true;
}
