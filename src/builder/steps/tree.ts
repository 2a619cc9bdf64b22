/**
 * The build's root from the tree cache (builder/tree-cache.ts): a cached
 * tree mounted as the lower layers of an overlay whose upper layer is on the
 * build's volume; an archive unpacked into a new cached layer first when its
 * tree is not cached (or straight into the root with the cache off, or when
 * the cache has no room or overlayfs cannot use it here); and, once the
 * package is current, the build's upper layer kept as one more layer of the
 * new package's tree. The tree below counts against builder.limits.disk like
 * what the build writes (Volume.charge), so the whole tree stays within it.
 */
import { mkdir, mkdtemp, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { type Compression, unpackTree } from '../../archive/tar.ts';
import { joinedCommand } from '../../process/join-cgroup.ts';
import { SYSTEM_PATH, describeEnd, run, runChecked } from '../../process/run.ts';
import { mountOverlay, mountReadOnly } from '../../sandbox/overlay.ts';
import { removeTree } from '../../sandbox/mounts.ts';
import type { BuildContext } from '../context.ts';
import { type CachedTree, type NewLayer, type TreeCache } from '../tree-cache.ts';
import { squash } from '../tree-squash.ts';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** Mounts `tree` at the build's root, with an upper layer of its own on the volume; throws (nothing mounted) when overlayfs refuses it. */
export async function mountTree(ctx: BuildContext, tree: CachedTree): Promise<void> {
  const dir = await mkdtemp(join(ctx.jail.treeDir, 'overlay-'));
  ctx.base = { tree, overlay: await mountOverlay(dir, ctx.cache.foldersOf(tree), ctx.root, ctx.cleanup) };
  ctx.jail.standOn(tree.layers.reduce((sum, layer) => sum + layer.bytes, 0));
}

/** Undoes mountTree (or a failed try of it): the root is an empty folder again. */
export async function unmountTree(ctx: BuildContext): Promise<void> {
  await ctx.base?.overlay.unmount();
  ctx.base = null;
  ctx.jail.standOn(0);
  await removeTree(ctx.root);
  await mkdir(ctx.root, { mode: 0o755 });
}

/**
 * Mounts the cached `tree` of the build's base; false (the tree forgotten,
 * the root empty) when it cannot be used, so the caller unpacks instead.
 */
export async function useTree(ctx: BuildContext, tree: CachedTree): Promise<boolean> {
  try {
    await mountTree(ctx, tree);
    return true;
  } catch (error) {
    ctx.log.output(`the cached tree cannot be used (${(error as Error).message}); unpacking instead`);
    ctx.state.trees.retire(tree.layers.map((layer) => layer.dir));
    await unmountTree(ctx);
    return false;
  }
}

/** Whether the disk of the cache has `bytes` free beyond builder.min_free. */
async function roomFor(ctx: BuildContext, bytes: number): Promise<boolean> {
  await mkdir(ctx.cache.folder, { recursive: true, mode: 0o700 });
  const disk = await statfs(ctx.cache.folder);
  return disk.bavail * disk.bsize - bytes >= ctx.config.builder.min_free * GIB;
}

/**
 * Unpacks the stored archive `key` as the build's base: into a new cached
 * layer (the tree of `source`: a package id, or the image's hash; `app` null
 * for the image) that the root then is an overlay of. Into the root itself
 * with the cache off, when the cache's disk may not have room for a whole
 * tree (builder.limits.disk, the most a tree may take), or when overlayfs
 * cannot mount it here.
 */
export async function unpackBase(ctx: BuildContext, key: string, compression: Compression, source: string, app: string | null): Promise<void> {
  const { limits } = ctx.config.builder;
  // The layer is recorded as the tree of `source`: the object read must be that one.
  const unpack = async (into: string) => unpackTree(await ctx.storage.get(key, source), into, compression, ctx.signal, ctx.jail.cgroupProcs);
  if (!ctx.cache.enabled || limits.disk === 0 || !(await roomFor(ctx, limits.disk * MIB))) {
    await unpack(ctx.root);
    return;
  }
  const layer = await beginLayer(ctx);
  await mkdir(layer.tree, { mode: 0o755 });
  await unpack(layer.tree);
  const tree = await layer.record({ parent: null, source, app }, { buildId: ctx.buildId });
  if (!(await useTree(ctx, tree))) {
    await ctx.cache.discard(layer);
    await unpack(ctx.root);
  }
}

/** What prepareTree leaves keepTree to do: record the copy it made (taking `bytes`), squash the stack, or nothing (not kept). */
export type TreeKeeping = { copy: Layer; bytes: number } | { squash: true } | null;

/**
 * Starts keeping the tree of the package this build makes, beside the
 * archive (both only read the finished tree): its upper layer, checked and
 * copied off the volume (what the build changed, whiteouts and opaque marks
 * included) into a new layer of the cache, which keepTree records once the
 * archive is stored. Nothing is kept when a copied-up hard link made the
 * upper layer incomplete, when it holds a socket (which the package leaves
 * out), or when the layer would not fit builder.cache.size or the cache's
 * disk (the next build unpacks the package again instead). A stack that
 * would grow deeper than builder.cache.layers is squashed by keepTree, once
 * the build's overlay is gone. Call after the last command of the build; the
 * build's cleanup stops the copy and removes a layer it did not record.
 */
export function prepareTree(ctx: BuildContext): Promise<TreeKeeping> {
  const stop = new AbortController();
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal;
  let made: Layer | null = null;
  const done = (async (): Promise<TreeKeeping> => {
    const base = ctx.base;
    if (base === null || !ctx.cache.enabled || (await base.overlay.copiedUpHardLinks())) return null;
    const upper = base.overlay.upper;
    const changed = await survey(ctx, upper, signal);
    // tar leaves sockets out of a package, so the layer would not be its tree: deleting them would change their
    // folders' times and bring back a file of the layer below that a socket replaced.
    if (changed.socket) return null;
    const { layers } = base.tree;
    const squashing = layers.length >= ctx.config.builder.cache.layers;
    // Squashed, the new layer holds what the layers over the bottom one changed too (about: what they took).
    const over = squashing ? layers.slice(0, -1).reduce((sum, layer) => sum + layer.bytes, 0) : 0;
    const bytes = changed.bytes + over;
    if (bytes > ctx.config.builder.cache.size * GIB || !(await roomFor(ctx, bytes))) return null;
    if (squashing) return { squash: true };
    signal.throwIfAborted();
    made = await newLayer(ctx);
    const args = ['-dR', '--preserve=mode,ownership,timestamps,links,xattr', '--no-target-directory', '--', upper, made.tree];
    await mustRun(ctx, 'cannot copy the build tree into the cache', 'cp', args, signal);
    // A copy takes what its source took.
    return { copy: made, bytes: changed.bytes };
  })();
  done.catch(() => undefined);
  ctx.cleanup.defer('the copy of the build tree', async () => {
    stop.abort();
    await done.catch(() => undefined);
    if (made && !made.recorded()) await ctx.cache.discard(made);
  });
  return done;
}

/**
 * Keeps the tree of the package this build made, as prepareTree began: its
 * copied layer recorded over the layers the build was mounted on, or the
 * build's layer squashed with every one over the bottom layer into one layer
 * over it (builder/tree-squash.ts). Not when something still held the tree
 * at unmount. Call once the archive is stored, before the package is made
 * current: the layer is claimed by the build, so retention keeps it until
 * the build ends (and drops it then if the package never became current).
 */
export async function keepTree(ctx: BuildContext, packageId: string, prepared: Promise<TreeKeeping>): Promise<void> {
  const base = ctx.base;
  const keeping = await prepared;
  if (base === null || keeping === null) return;
  if (!(await base.overlay.unmount())) return;
  const fields = { source: packageId, app: ctx.app };
  if ('copy' in keeping) {
    await keeping.copy.record({ ...fields, parent: base.tree }, { bytes: keeping.bytes, buildId: ctx.buildId });
    return;
  }
  const { layers } = base.tree;
  const bottom = layers[layers.length - 1] as (typeof layers)[number];
  const layer = await beginLayer(ctx);
  const dir = await mkdtemp(join(ctx.jail.treeDir, 'squash-'));
  const merged = join(dir, 'merged');
  await mkdir(merged);
  const unmount = await mountReadOnly(dir, [base.overlay.upper, ...ctx.cache.foldersOf(base.tree)], merged, ctx.cleanup);
  await mkdir(layer.tree);
  const uppers = [base.overlay.upper, ...ctx.cache.foldersOf({ layers: layers.slice(0, -1) })];
  await squash({
    merged,
    bottom: ctx.cache.treeOf(bottom.dir),
    uppers,
    into: layer.tree,
    signal: ctx.signal,
    cgroupProcs: ctx.jail.cgroupProcs,
    timeoutSeconds: ctx.config.commands.timelimit,
  });
  await unmount();
  await layer.record({ ...fields, parent: { layers: [bottom] } }, { buildId: ctx.buildId });
  ctx.log.output(`the tree's ${layers.length} layers over its bottom one squashed into one for the next build (builder.cache.layers ${ctx.config.builder.cache.layers})`);
}

/** A new layer folder of the build, and how it becomes part of the cache. */
interface Layer extends NewLayer {
  /**
   * Writes its data to disk (a crash must not leave a recorded layer of empty files), then records it: `bytes`
   * it takes, when known (else measured); `buildId` claims it for that build.
   */
  record: (fields: Parameters<TreeCache['add']>[1], options?: { bytes?: number; buildId?: number }) => Promise<CachedTree>;
  recorded: () => boolean;
}

async function newLayer(ctx: BuildContext): Promise<Layer> {
  const layer = await ctx.cache.newLayer(ctx.app, ctx.buildId);
  let recorded = false;
  return {
    ...layer,
    recorded: () => recorded,
    record: async (fields, options = {}) => {
      await mustRun(ctx, 'cannot write the tree layer to disk', 'sync', ['--file-system', '--', layer.tree]);
      const tree = await ctx.cache.add(layer, fields, options.buildId, options.bytes);
      recorded = true;
      return tree;
    },
  };
}

/** A new layer folder of the build, removed by the build's cleanup unless recorded. */
async function beginLayer(ctx: BuildContext): Promise<Layer> {
  const layer = await newLayer(ctx);
  ctx.cleanup.defer('an unfinished tree layer', async () => {
    if (!layer.recorded()) await ctx.cache.discard(layer);
  });
  return layer;
}

/**
 * What a layer holds, in one pass (run like mustRun's programs): whether a
 * socket, and the bytes it takes on disk (as `du -x` counts: hard links once).
 */
async function survey(ctx: BuildContext, folder: string, signal: AbortSignal): Promise<{ socket: boolean; bytes: number }> {
  let socket = false;
  let bytes = 0;
  const seen = new Set<string>();
  const [file, args] = joinedCommand(ctx.jail.cgroupProcs, 'find', [folder, '-xdev', '-printf', '%y %i %b\\n']);
  const result = await run(file, args, {
    signal,
    timeoutSeconds: ctx.config.commands.timelimit,
    cleanEnv: true,
    env: { PATH: SYSTEM_PATH },
    onLine: (line) => {
      const [type, inode, blocks] = line.split(' ');
      if (type === 's') socket = true;
      if (inode === undefined || seen.has(inode)) return;
      seen.add(inode);
      bytes += Number(blocks) * 512;
    },
  });
  if (!result.ok) throw new Error(`cannot look through the build tree: find ${describeEnd(result)}: ${result.tail.slice(-3).join(' ')}`);
  return { socket, bytes };
}

/** A host program over the build's trees, in the build's cgroup, stopped with the build (or by `signal`). */
async function mustRun(ctx: BuildContext, what: string, file: string, args: string[], signal = ctx.signal): Promise<void> {
  await runChecked(what, ...joinedCommand(ctx.jail.cgroupProcs, file, args), { signal, timeoutSeconds: ctx.config.commands.timelimit });
}
