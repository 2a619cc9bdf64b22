/**
 * Step 6 - Package archive. The tree goes through tar and the compressor in
 * frames (archive/frames.ts) straight into the storage handler, which hashes
 * it in the same pass; the SHA-256 is the package id. A build over a cached
 * tree (the current package's, or the system image's) copies the frames of
 * what it did not change from the archive that tree came from.
 */
import { EXTENSION, compressionOf } from '../../archive/tar.ts';
import { type FrameIndex, type Packed, type Reuse, WhiteoutInTree, packTree, readFrameIndex } from '../../archive/frames.ts';
import { listTree } from '../../archive/tree-list.ts';
import { serverLog } from '../../process/server-log.ts';
import type { KeyFor, StoredObject } from '../../storage/handler.ts';
import type { BuildContext } from '../context.ts';
import { BuildError, systemError, userError } from '../errors.ts';
import { imageKey } from './image.ts';

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
    if (ctx.signal?.aborted || (error instanceof BuildError && error.kind === 'user') || (await ctx.jail.limitHit())) throw error;
    serverLog(`build ${ctx.buildId} of ${ctx.app}: the frames of the archive before were not reused: ${(error as Error).message}`);
    return storeTree(ctx, ctx.root, key, 'the package archive');
  }
}

/**
 * What the archive can reuse: the frames of the archive the root's cached
 * tree came from (the current package's, or for a fresh build the system
 * image's) when that archive has a frame index in the same compression; the
 * names the build changed are its upper layer's.
 */
async function reusable(ctx: BuildContext): Promise<Reuse | undefined> {
  const { current, base } = ctx;
  const top = base?.tree.layers[0];
  if (!base || !top) return undefined;
  const { compression } = ctx.config.builder;
  let found: { text: string | null; key: string; compression: string } | null = null;
  if (top.app === null) {
    // The image's tree is named by its file's hash: the frames are those of the image stored now if it is that file.
    const key = imageKey(ctx.config);
    if ((await ctx.storage.stat(key))?.sha256 === top.source) found = { text: ctx.state.images.frames(key), key, compression: compressionOf(key) };
  }  else if (current?.file && top.source === current.id) found = { text: ctx.state.packages.frames(ctx.app, current.id), key: current.storageKey, compression: current.compression };
  const index = readFrameIndex(found?.text ?? null);
  if (!found || !index || index.compression !== compression || found.compression !== compression) return undefined;
  const changed = (await listTree(base.overlay.upper, ctx.signal, ctx.jail.cgroupProcs)).map((entry) => entry.key);
  const key = found.key;
  // The very archive the tree came from: an image made again under its key since is another.
  return { index, changed, archive: () => ctx.storage.get(key, top.source) };
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
  // What the build left in its tree is the app's to mend.
  if (packed.status === 'rejected' && packed.reason instanceof WhiteoutInTree) throw userError(packed.reason.message, { cause: packed.reason });
  // A failed write (a full disk) is why the programs feeding it stopped: its reason says most.
  const reason = (put.status === 'rejected' ? put.reason : (packed as PromiseRejectedResult).reason) as Error;
  throw systemError(`cannot create or store ${what}: ${reason.message}`, { cause: reason });
}

const reusedLine = ({ index, reused }: Packed): string => `${reused} of ${index.frames.length} frames copied from the archive before`;
