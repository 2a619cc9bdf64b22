/** Free disk space under the server's folders, against builder.min_free. */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';

const GIB = 1024 ** 3;

/** The folders (or, for one not made yet, its nearest existing parent) with less than `wantedGiB` free, and what is free there. */
export async function shortOfSpace(folders: readonly string[], wantedGiB: number): Promise<{ folder: string; free: number }[]> {
  if (wantedGiB === 0) return [];
  const short: { folder: string; free: number }[] = [];
  for (const folder of folders) {
    const stats = await statfsNearest(folder);
    if (!stats) continue;
    const free = stats.bavail * stats.bsize;
    if (free < wantedGiB * GIB) short.push({ folder, free });
  }
  return short;
}

/** statfs of `folder`, or of its nearest existing parent (storage folders appear with their first object). */
async function statfsNearest(folder: string) {
  for (let at = folder; ; at = dirname(at)) {
    const stats = await statfs(at).catch(() => null);
    if (stats || dirname(at) === at) return stats;
  }
}
