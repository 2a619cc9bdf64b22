/**
 * The tree cache: unpacked trees of the apps' current packages and of the
 * system image, kept under STATE/trees so that the next build mounts them as
 * the read-only lower layers of its overlay (sandbox/overlay.ts) instead of
 * unpacking its base again. A tree is a stack of layers: a full unpack at the
 * bottom, and over it the upper layer of each build since (copied off the
 * build's volume once its package is current), so keeping a build's tree
 * costs what the build changed. The rows (state/trees.ts) say which layers are
 * complete; a folder without a row is half made (or half removed) and the
 * sweep removes it.
 *
 * Bounded by builder.cache: at most `trees` trees of current packages (the
 * image's counts as one) taking at most `size` GiB, least recently used
 * dropped first; a tree whose package is no longer current (rollback, new
 * build, deleted app) is dropped unless a kept tree or a live build stands
 * on it.
 */
import { mkdir, mkdtemp, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/config.ts';
import { capture } from '../process/run.ts';
import { removeTree } from '../sandbox/mounts.ts';
import type { State } from '../state/state.ts';
import type { TreeLayer } from '../state/trees.ts';
import { buildFolderPrefix, buildOfFolder } from './folder-names.ts';

const GIB = 1024 ** 3;

/** A tree taken for a build: its layers, top first. */
export interface CachedTree {
  layers: TreeLayer[];
}

/** A layer being made: `tree` is filled, then `add` records it. */
export interface NewLayer {
  name: string;
  tree: string;
}

export class TreeCache {
  readonly folder: string;

  constructor(
    private readonly config: Config,
    private readonly state: State,
  ) {
    this.folder = join(config.paths.state, 'trees');
  }

  get enabled(): boolean {
    const { trees, size } = this.config.builder.cache;
    return trees > 0 && size > 0;
  }

  /** Where a layer's tree lies. */
  treeOf(dir: string): string {
    return join(this.folder, dir, 'tree');
  }

  /**
   * The cached tree of `source` (a package id or the image's key), claimed
   * for build `buildId`; null when there is none or when a folder of it is
   * gone (then it is retired).
   */
  async take(source: string, app: string | null, buildId: number): Promise<CachedTree | null> {
    if (!this.enabled) return null;
    const layers = this.state.trees.take(source, app, buildId);
    if (layers === null) return null;
    for (const layer of layers) {
      if (!(await this.there(layer.dir))) {
        this.state.trees.retire([layer.dir]);
        return null;
      }
    }
    return { layers };
  }

  /** The folders overlayfs reads for `tree`, top first. */
  foldersOf(tree: CachedTree): string[] {
    return tree.layers.map((layer) => this.treeOf(layer.dir));
  }

  /** Whether a layer's tree is there. */
  private async there(dir: string): Promise<boolean> {
    return stat(this.treeOf(dir)).then(
      (info) => info.isDirectory(),
      () => false,
    );
  }

  /** A new, empty layer folder for build `buildId` of `app` (the image's layer too is made by a build), named like its temp folder. */
  async newLayer(app: string, buildId: number): Promise<NewLayer> {
    await mkdir(this.folder, { recursive: true, mode: 0o700 });
    const dir = await mkdtemp(join(this.folder, buildFolderPrefix(app, buildId)));
    return { name: dir.slice(this.folder.length + 1), tree: join(dir, 'tree') };
  }

  /**
   * Records a complete layer (its tree filled) and, in the same transaction,
   * claims it for `buildId` when given; returns the tree over `parent`. The
   * bytes it takes are measured unless `known`.
   */
  async add(layer: NewLayer, fields: { parent: CachedTree | null; source: string; app: string | null }, buildId?: number, known?: number): Promise<CachedTree> {
    const bytes = known ?? (await this.diskUse(join(this.folder, layer.name)));
    const below = fields.parent?.layers ?? [];
    const record = { dir: layer.name, parent: below[0]?.dir ?? null, source: fields.source, app: fields.app, depth: below.length + 1, bytes };
    return { layers: [this.state.trees.add(record, buildId), ...below] };
  }

  /** Removes a layer folder that was never recorded (a failed unpack or copy). */
  async discard(layer: NewLayer): Promise<void> {
    await removeTree(join(this.folder, layer.name));
  }

  /**
   * Drops what is no longer kept: trees whose package is not current, and the
   * least recently used beyond builder.cache; never a layer a live build
   * stands on or has kept, nor the tree of the package it started from (its
   * app's current one again if the build fails after all, even once its own
   * layer was squashed apart from it). `imageSource`: the stored system
   * image's hash (its tree's source). Returns the folders removed.
   */
  async collect(imageSource: string | null): Promise<string[]> {
    const { trees, size } = this.config.builder.cache;
    const keep = (layers: TreeLayer[]): string[] => {
      const byDir = new Map(layers.map((layer) => [layer.dir, layer]));
      const heads = layers
        .filter((layer) => (layer.app === null ? layer.source === imageSource : this.state.packages.current(layer.app)?.id === layer.source))
        .sort((a, b) => b.usedAt.localeCompare(a.usedAt));
      const kept: string[] = [];
      const counted = new Set<string>();
      let bytes = 0;
      for (const head of heads) {
        if (kept.length >= trees) break;
        const chain: TreeLayer[] = [];
        for (let layer = byDir.get(head.dir); layer; layer = layer.parent ? byDir.get(layer.parent) : undefined) chain.push(layer);
        const more = chain.filter((layer) => !counted.has(layer.dir)).reduce((sum, layer) => sum + layer.bytes, 0);
        if (bytes + more > size * GIB) continue;
        bytes += more;
        for (const layer of chain) counted.add(layer.dir);
        kept.push(head.dir);
      }
      return kept;
    };
    const live = (layers: TreeLayer[]): string[] => {
      const bases = this.state.builds.liveBases();
      return [...bases.trees, ...layers.filter((layer) => layer.app !== null && bases.packages.has(layer.source)).map((layer) => layer.dir)];
    };
    // Turned off, the cache keeps nothing but what live builds stand on.
    const dropped = this.state.trees.collect(this.enabled ? keep : () => [], live);
    for (const dir of dropped) await removeTree(join(this.folder, dir));
    return dropped;
  }

  /**
   * Crash recovery (server start, doctor --fix): folders without a row whose
   * build is not live are removed (half made, or half removed), and rows
   * whose folder is gone are retired. Returns the folders removed.
   * A folder in the making is not "left": its build's row says it runs.
   */
  async sweep(liveBuilds: () => ReadonlySet<number>): Promise<string[]> {
    for (const layer of this.state.trees.all()) {
      if (!(await this.there(layer.dir))) this.state.trees.retire([layer.dir]);
    }
    const removed = await this.leftovers(liveBuilds);
    for (const folder of removed) await removeTree(folder);
    return removed;
  }

  /** Layer folders without a row whose build does not run (half made, or half removed); changes nothing. */
  async leftovers(liveBuilds: () => ReadonlySet<number>): Promise<string[]> {
    const names = await readdir(this.folder).catch(() => [] as string[]);
    const recorded = new Set(this.state.trees.all().map((layer) => layer.dir));
    // Asked for after the listing: a build that starts meanwhile is live, its new folder not left.
    const live = liveBuilds();
    return names
      .filter((name) => {
        if (recorded.has(name)) return false;
        const build = buildOfFolder(name);
        return build === null || !live.has(build);
      })
      .map((name) => join(this.folder, name));
  }

  /** Bytes a folder takes on disk (du: hard links once, no other file system). */
  async diskUse(dir: string): Promise<number> {
    const out = await capture('du', ['-s', '-x', '-B1', '--', dir]);
    return Number(out.split('\t')[0]);
  }

  /** What the cache holds: trees (layers with nothing over them), layers and bytes. */
  usage(): { trees: number; layers: number; bytes: number } {
    const layers = this.state.trees.all();
    const parents = new Set(layers.map((layer) => layer.parent));
    return { trees: layers.filter((layer) => !parents.has(layer.dir)).length, layers: layers.length, bytes: layers.reduce((sum, layer) => sum + layer.bytes, 0) };
  }
}

