/**
 * Step 6 - Package archive. The whole workdir goes through `tar | zstd -T0`
 * (or gzip) straight into the storage handler, which hashes it in the same
 * pass; the SHA-256 is the package id.
 */
import { EXTENSION, packTree } from '../../archive/tar.ts';
import type { StoredObject } from '../../storage/handler.ts';
import type { BuildContext } from '../context.ts';
import { systemError } from '../errors.ts';

export async function archivePackage(ctx: BuildContext): Promise<StoredObject> {
  const { compression, level } = ctx.config.builder;
  ctx.log.step(`Creating package archive (${compression})`);
  const { stream, done } = packTree(ctx.root, compression, level);
  const [put, packed] = await Promise.allSettled([
    ctx.storage.put((sha256) => `packages/${ctx.app}/${sha256}.${EXTENSION[compression]}`, stream),
    done,
  ]);
  if (put.status === 'fulfilled' && packed.status === 'fulfilled') return put.value;
  // A stored object whose tar failed is incomplete: it must not stay.
  if (put.status === 'fulfilled') await ctx.storage.delete(put.value.key).catch(() => undefined);
  const reason = (packed.status === 'rejected' ? packed.reason : (put as PromiseRejectedResult).reason) as Error;
  throw systemError(`cannot create or store the package archive: ${reason.message}`, { cause: reason });
}
