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
  const tree = await layer.record({ parent: null, source, app }, ctx.buildId);
  if (!(await useTree(ctx, tree))) {
    await ctx.cache.discard(layer);
    await unpack(ctx.root);
  }
}

/**
 * Keeps the tree of the package this build made: its upper layer, copied off
 * the volume (what the build changed, whiteouts and opaque marks included),
 * over the layers it was mounted on; or, when that would make the stack
 * deeper than builder.cache.layers, squashed with every layer over the
 * bottom one into one layer over it (builder/tree-squash.ts). Not when a
 * copied-up hard link made the upper layer incomplete, when it holds a
 * socket (which the package leaves out), when something still held the tree
 * at unmount, or when the layer would not fit builder.cache.size or the
 * cache's disk (the next build unpacks the package again instead). Call once
 * the package is current and its archive is made.
 */
export async function keepTree(ctx: BuildContext, packageId: string): Promise<void> {
  const base = ctx.base;
  if (base === null || !ctx.cache.enabled) return;
  if (!(await base.overlay.unmount())) return;
  if (await base.overlay.copiedUpHardLinks()) return;
  const upper = base.overlay.upper;
  const changed = await survey(ctx, upper);
  // tar leaves sockets out of a package, so the layer would not be its tree: deleting them would change their
  // folders' times and bring back a file of the layer below that a socket replaced.
  if (changed.socket) return;
  const { layers } = base.tree;
  const bottom = layers[layers.length - 1];
  const squashing = bottom !== undefined && layers.length >= ctx.config.builder.cache.layers;
  // Squashed, the new layer holds what the layers over the bottom one changed too (about: what they took).
  const over = squashing ? layers.slice(0, -1).reduce((sum, layer) => sum + layer.bytes, 0) : 0;
  const bytes = changed.bytes + over;
  if (bytes > ctx.config.builder.cache.size * GIB || !(await roomFor(ctx, bytes))) return;
  const layer = await beginLayer(ctx);
  const fields = { source: packageId, app: ctx.app };
  if (!squashing) {
    await mustRun(ctx, 'cannot copy the build tree into the cache', 'cp', [
      '-dR',
      '--preserve=mode,ownership,timestamps,links,xattr',
      '--no-target-directory',
      '--',
      upper,
      layer.tree,
    ]);
    // A copy takes what its source took.
    await layer.record({ ...fields, parent: base.tree }, undefined, changed.bytes);
    return;
  }
  const dir = await mkdtemp(join(ctx.jail.treeDir, 'squash-'));
  const merged = join(dir, 'merged');
  await mkdir(merged);
  const unmount = await mountReadOnly(dir, [upper, ...ctx.cache.foldersOf(base.tree)], merged, ctx.cleanup);
  await mkdir(layer.tree);
  const uppers = [upper, ...ctx.cache.foldersOf({ layers: layers.slice(0, -1) })];
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
  await layer.record({ ...fields, parent: { layers: [bottom] } });
  ctx.log.output(`the tree's ${layers.length} layers over its bottom one squashed into one for the next build (builder.cache.layers ${ctx.config.builder.cache.layers})`);
}

/**
 * A new layer folder of the build; removed by the build's cleanup unless
 * `record` (which first writes its data to disk: a crash must not leave a
 * recorded layer of empty files) made it part of the cache.
 */
async function beginLayer(
  ctx: BuildContext,
): Promise<NewLayer & { record: (fields: Parameters<TreeCache['add']>[1], buildId?: number, bytes?: number) => Promise<CachedTree> }> {
  const layer = await ctx.cache.newLayer(ctx.app, ctx.buildId);
  let recorded = false;
  ctx.cleanup.defer('an unfinished tree layer', async () => {
    if (!recorded) await ctx.cache.discard(layer);
  });
  const record = async (fields: Parameters<TreeCache['add']>[1], buildId?: number, bytes?: number) => {
    await mustRun(ctx, 'cannot write the tree layer to disk', 'sync', ['--file-system', '--', layer.tree]);
    const tree = await ctx.cache.add(layer, fields, buildId, bytes);
    recorded = true;
    return tree;
  };
  return { ...layer, record };
}

/**
 * What a layer holds, in one pass (run like mustRun's programs): whether a
 * socket, and the bytes it takes on disk (as `du -x` counts: hard links once).
 */
async function survey(ctx: BuildContext, folder: string): Promise<{ socket: boolean; bytes: number }> {
  let socket = false;
  let bytes = 0;
  const seen = new Set<string>();
  const [file, args] = joinedCommand(ctx.jail.cgroupProcs, 'find', [folder, '-xdev', '-printf', '%y %i %b\\n']);
  const result = await run(file, args, {
    signal: ctx.signal,
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

/** A host program over the build's trees, in the build's cgroup, stopped with the build. */
async function mustRun(ctx: BuildContext, what: string, file: string, args: string[]): Promise<void> {
  await runChecked(what, ...joinedCommand(ctx.jail.cgroupProcs, file, args), { signal: ctx.signal, timeoutSeconds: ctx.config.commands.timelimit });
}
