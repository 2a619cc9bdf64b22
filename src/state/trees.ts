/**
 * The records of the tree cache (builder/tree-cache.ts): one row per layer
 * folder. A layer with its parents, top first, is the unpacked tree of its
 * `source`. Rows are written once a layer is complete and deleted before its
 * folder is, so a folder without a row is half made or half removed.
 */
import type { Db } from './db.ts';

export interface TreeLayer {
  /** The folder's name under STATE/trees. */
  dir: string;
  parent: string | null;
  /** A package id, or the system image's storage key. */
  source: string;
  /** null: the system image's tree, which every app's fresh builds share. */
  app: string | null;
  /** 1 for a layer without parent. */
  depth: number;
  /** What the folder takes on disk. */
  bytes: number;
  createdAt: string;
  usedAt: string;
}

interface Row {
  dir: string;
  parent: string | null;
  source: string;
  app: string | null;
  depth: number;
  bytes: number;
  created_at: string;
  used_at: string;
}

const toLayer = (row: Row): TreeLayer => ({
  dir: row.dir,
  parent: row.parent,
  source: row.source,
  app: row.app,
  depth: row.depth,
  bytes: row.bytes,
  createdAt: row.created_at,
  usedAt: row.used_at,
});

export class TreeLayers {
  constructor(private readonly db: Db) {}

  all(): TreeLayer[] {
    return (this.db.prepare('SELECT * FROM tree_layers ORDER BY created_at').all() as Row[]).map(toLayer);
  }

  /** Records a complete layer; with `buildId`, claims it for that build in the same transaction (see take). */
  add(layer: Omit<TreeLayer, 'createdAt' | 'usedAt'>, buildId?: number): TreeLayer {
    const now = new Date().toISOString();
    this.db
      .transaction(() => {
        this.db
          .prepare('INSERT INTO tree_layers (dir, parent, source, app, depth, bytes, created_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
          .run(layer.dir, layer.parent, layer.source, layer.app, layer.depth, layer.bytes, now, now);
        if (buildId !== undefined) this.db.prepare('UPDATE builds SET tree_layer = ? WHERE id = ?').run(layer.dir, buildId);
      })
      .immediate();
    return { ...layer, createdAt: now, usedAt: now };
  }

  /**
   * The layers of `source`'s tree (of `app`, or the image's: null), top first, taken for build `buildId` in
   * one transaction (a collection in another process either sees the build's
   * claim, or has deleted the rows first and this finds none): null when no
   * complete chain is recorded.
   */
  take(source: string, app: string | null, buildId: number): TreeLayer[] | null {
    return this.db
      .transaction(() => {
        // Of an app's own trees (null: the image's); the shallowest complete one.
        const heads = this.db.prepare('SELECT * FROM tree_layers WHERE source = ? AND app IS ? ORDER BY depth').all(source, app) as Row[];
        const found = heads.map((row) => ({ head: row, chain: this.chain(row.dir) })).find((candidate) => candidate.chain !== null);
        if (!found) return null;
        const { head, chain } = found as { head: Row; chain: TreeLayer[] };
        this.db.prepare('UPDATE tree_layers SET used_at = ? WHERE dir = ?').run(new Date().toISOString(), head.dir);
        this.db.prepare('UPDATE builds SET tree_layer = ? WHERE id = ?').run(head.dir, buildId);
        return chain;
      })
      .immediate();
  }

  /** `dir` and its parents, top first; null when one is missing. */
  private chain(dir: string): TreeLayer[] | null {
    const layers: TreeLayer[] = [];
    for (let next: string | null = dir; next !== null; ) {
      const row = this.db.prepare('SELECT * FROM tree_layers WHERE dir = ?').get(next) as Row | undefined;
      if (!row) return null;
      layers.push(toLayer(row));
      next = row.parent;
    }
    return layers;
  }

  /**
   * Deletes the rows of every layer that `keep` (layer folders) and the live
   * builds' layers do not reach through their parents, in one transaction;
   * returns the deleted folders (for the caller to remove). Both are asked
   * for inside the transaction, from the layers as they are then.
   */
  collect(keep: (layers: TreeLayer[]) => Iterable<string>, liveLayers: (layers: TreeLayer[]) => Iterable<string>): string[] {
    return this.db
      .transaction(() => {
        const layers = this.all();
        const byDir = new Map(layers.map((layer) => [layer.dir, layer]));
        const reached = new Set<string>();
        for (const start of [...keep(layers), ...liveLayers(layers)]) {
          for (let dir: string | null = start; dir !== null && !reached.has(dir); dir = byDir.get(dir)?.parent ?? null) {
            if (byDir.has(dir)) reached.add(dir);
          }
        }
        const dropped = layers.filter((layer) => !reached.has(layer.dir)).map((layer) => layer.dir);
        const remove = this.db.prepare('DELETE FROM tree_layers WHERE dir = ?');
        for (const dir of dropped) remove.run(dir);
        return dropped;
      })
      .immediate();
  }

  /**
   * Retires layers that turned out unusable (a folder gone, a tree overlayfs
   * would not mount or that fails): each of `dirs` and every layer over them
   * is no tree of its source any more, so no build takes it again, and the
   * next collection removes it once no live build stands on it. Rows are not
   * deleted here: a folder without a row is the sweep's to remove, and a
   * live build may still have it mounted.
   */
  retire(dirs: readonly string[]): void {
    this.db.transaction(() => {
      const mark = this.db.prepare("UPDATE tree_layers SET source = 'retired:' || source WHERE dir = ? AND source NOT LIKE 'retired:%'");
      const over = this.db.prepare('SELECT dir FROM tree_layers WHERE parent = ?');
      for (let next = [...dirs]; next.length > 0; ) {
        const dir = next.pop() as string;
        mark.run(dir);
        next.push(...(over.all(dir) as { dir: string }[]).map((row) => row.dir));
      }
    })();
  }
}
