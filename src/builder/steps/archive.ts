/**
 * Step 6 - Package archive. The tree goes through tar and the compressor in
 * frames (archive/frames.ts) straight into the storage handler, which hashes
 * it in the same pass; the SHA-256 is the package id. A build over the cached
 * tree of the current package copies the frames of what it did not change
 * from that package's archive.
 */
import { EXTENSION } from '../../archive/tar.ts';
import { type FrameIndex, type Packed, type Reuse, packTree, readFrameIndex } from '../../archive/frames.ts';
import { listTree } from '../../archive/tree-list.ts';
import { serverLog } from '../../process/server-log.ts';
import type { KeyFor, StoredObject } from '../../storage/handler.ts';
import type { BuildContext } from '../context.ts';
import { systemError } from '../errors.ts';

export interface Archived {
  stored: StoredObject;
  index: FrameIndex;
}

export async function archivePackage(ctx: BuildContext): Promise<Archived> {
  const { compression } = ctx.config.builder;
  ctx.log.step(`Creating package archive (${compression})`);
  const key = (sha256: string) => `packages/${ctx.app}/${sha256}.${EXTENSION[compression]}`;
  const reuse = await reusable(ctx);
  if (!reuse) return storeTree(ctx, ctx.root, key, 'the package archive');
  try {
    return await storeTree(ctx, ctx.root, key, 'the package archive', reuse);
  } catch (error) {
    // The frames before were no help (a package file that fails its hash, say): the whole tree, as without them.
    if (ctx.signal?.aborted || (await ctx.jail.limitHit())) throw error;
    serverLog(`build ${ctx.buildId} of ${ctx.app}: the frames of package ${ctx.current?.id.slice(0, 12)} were not reused: ${(error as Error).message}`);
    return storeTree(ctx, ctx.root, key, 'the package archive');
  }
}

/**
 * What the archive can reuse: the frames of the current package when the
 * root is an overlay of its cached tree and its archive (same compression)
 * has a frame index; the names the build changed are its upper layer's.
 */
async function reusable(ctx: BuildContext): Promise<Reuse | undefined> {
  const { current, base } = ctx;
  if (!current || !base || !current.file || base.tree.layers[0]?.source !== current.id) return undefined;
  const index = readFrameIndex(ctx.state.packages.frames(ctx.app, current.id));
  if (!index || index.compression !== ctx.config.builder.compression || index.compression !== current.compression) return undefined;
  const changed = (await listTree(base.overlay.upper, ctx.signal, ctx.jail.cgroupProcs)).map((entry) => entry.key);
  return { index, changed, archive: () => ctx.storage.get(current.storageKey) };
}

/**
 * Packs `root` with the configured compression straight into storage under
 * `key`. Both the packing and the storage write must succeed: an object whose
 * packing failed is incomplete and is deleted again.
 */
export async function storeTree(ctx: BuildContext, root: string, key: KeyFor, what: string, reuse?: Reuse): Promise<Archived> {
  const { compression, level } = ctx.config.builder;
  const { stream, done } = packTree(root, { compression, level, signal: ctx.signal, cgroupProcs: ctx.jail.cgroupProcs, reuse });
  const [put, packed] = await Promise.allSettled([ctx.storage.put(key, stream), done]);
  if (put.status === 'fulfilled' && packed.status === 'fulfilled') {
    if (reuse) ctx.log.output(reusedLine(packed.value));
    return { stored: put.value, index: packed.value.index };
  }
  if (put.status === 'fulfilled') await ctx.storage.delete(put.value.key).catch(() => undefined);
  // A failed write (a full disk) is why the programs feeding it stopped: its reason says most.
  const reason = (put.status === 'rejected' ? put.reason : (packed as PromiseRejectedResult).reason) as Error;
  throw systemError(`cannot create or store ${what}: ${reason.message}`, { cause: reason });
}

const reusedLine = ({ index, reused }: Packed): string => `${reused} of ${index.frames.length} frames copied from the package before`;
