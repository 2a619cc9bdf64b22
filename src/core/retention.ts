/**
 * Retention: what a server keeps of an app, so that months of pushes do not
 * fill its disk. After each build and rollback: package files beyond the
 * newest apps.packages_per_app (never the current one, never one a running
 * build starts from), logs of builds beyond the newest apps.builds_per_app,
 * system images that a newer image replaced (once no build uses them), and
 * cached trees no longer kept. Records stay, marked; only files go.
 */
import { rm } from 'node:fs/promises';
import { logFile } from '../builder/log.ts';
import { imageKey } from '../builder/steps/image.ts';
import { TreeCache } from '../builder/tree-cache.ts';
import { appSettings } from '../config/config.ts';
import type { Services } from './services.ts';

export interface Pruned {
  packages: string[];
  logs: number[];
  images: string[];
  /** Layer folders of the tree cache. */
  trees: string[];
}

type Needs = Pick<Services, 'config' | 'state' | 'storage'>;

/** Applies the retention of `app` (and of system images) now; returns what it deleted. */
export async function applyRetention(services: Needs, app: string): Promise<Pruned> {
  const { config, state, storage } = services;
  const settings = appSettings(config, app);
  const bases = state.builds.liveBases();

  const stored = state.packages.list(app).filter((pkg) => pkg.file);
  const keep = new Set([...stored.slice(0, settings.packages_per_app).map((pkg) => pkg.id), ...bases.packages]);
  const packages: string[] = [];
  for (const pkg of stored.slice(settings.packages_per_app)) {
    // The record is marked first (and not at all if it became current meanwhile).
    if (!state.packages.markFileDeleted(app, pkg.id, keep)) continue;
    await storage.delete(pkg.storageKey);
    packages.push(pkg.id);
  }

  const logs = state.builds.pruneLogs(app, settings.builds_per_app);
  for (const id of logs) await rm(logFile(config.paths.state, app, id), { force: true });

  const images = await pruneImages(services, bases.images);
  return { packages, logs, images, trees: await collectTrees(services) };
}

/**
 * Drops the cached trees that are no longer kept (builder/tree-cache.ts):
 * those of packages that are not current (a new build, a rollback, a deleted
 * app), of a replaced system image, and the least recently used beyond
 * builder.cache; never what a live build stands on.
 */
export async function collectTrees(services: Needs): Promise<string[]> {
  const image = await services.storage.stat(imageKey(services.config));
  return new TreeCache(services.config, services.state).collect(image?.sha256 ?? null);
}

/**
 * Deletes the system images this server stored other than the current
 * config's, once that one exists, unless a running build uses them. Images
 * in the same storage that this server did not make are not its to delete.
 */
export async function pruneImages(services: Needs, inUse: ReadonlySet<string>): Promise<string[]> {
  const current = imageKey(services.config);
  if (!(await services.storage.exists(current))) return [];
  const removed: string[] = [];
  for (const image of services.state.images.list()) {
    if (image.key === current || inUse.has(image.key)) continue;
    await services.storage.delete(image.key);
    services.state.images.forget(image.key);
    removed.push(image.key);
  }
  return removed;
}
