/**
 * Step 6 - Package archive. The whole workdir goes through `tar | zstd -T0`
 * (or gzip) straight into the storage handler, which hashes it in the same
 * pass; the SHA-256 is the package id.
 */
import { EXTENSION, packTree } from '../../archive/tar.ts';
import type { KeyFor, StoredObject } from '../../storage/handler.ts';
import type { BuildContext } from '../context.ts';
import { systemError } from '../errors.ts';

export async function archivePackage(ctx: BuildContext): Promise<StoredObject> {
  const { compression } = ctx.config.builder;
  ctx.log.step(`Creating package archive (${compression})`);
  return storeTree(ctx, ctx.root, (sha256) => `packages/${ctx.app}/${sha256}.${EXTENSION[compression]}`, 'the package archive');
}

/**
 * Packs `root` with the configured compression straight into storage under
 * `key`. Both the tar and the storage write must succeed: an object whose tar
 * failed is incomplete and is deleted again.
 */
export async function storeTree(ctx: BuildContext, root: string, key: KeyFor, what: string): Promise<StoredObject> {
  const { compression, level } = ctx.config.builder;
  const { stream, done } = packTree(root, compression, level, ctx.signal, ctx.jail.cgroupProcs);
  const [put, packed] = await Promise.allSettled([ctx.storage.put(key, stream), done]);
  if (put.status === 'fulfilled' && packed.status === 'fulfilled') return put.value;
  if (put.status === 'fulfilled') await ctx.storage.delete(put.value.key).catch(() => undefined);
  // A failed write (a full disk) is why the programs feeding it stopped: its reason says most.
  const reason = (put.status === 'rejected' ? put.reason : (packed as PromiseRejectedResult).reason) as Error;
  throw systemError(`cannot create or store ${what}: ${reason.message}`, { cause: reason });
}
