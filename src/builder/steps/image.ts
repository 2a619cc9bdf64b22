/**
 * Step 1 - System image. Unpacks the base of the build into the workdir: the
 * app's current package, or for a first or fresh package the cached empty OS
 * image, which is (re)built by the admin's bootstrap commands when missing,
 * older than bootstrap.maxage days, or broken. Then runs the admin's `system` action.
 */
import { createHash } from 'node:crypto';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { EXTENSION, compressionOf } from '../../archive/tar.ts';
import type { Config } from '../../config/config.ts';
import type { StoredObject } from '../../storage/handler.ts';
import { describeEnd } from '../../process/run.ts';
import { removeTree } from '../../sandbox/mounts.ts';
import { runIsolatedOnHost } from '../../sandbox/sandbox.ts';
import { type BuildContext, actionEnv, failOnLimit, inChroot, runCommands } from '../context.ts';
import { systemError } from '../errors.ts';
import { formatBytes } from '../log.ts';
import { parseOsRelease } from '../plan.ts';
import { storeTree } from './archive.ts';
import { installPackages } from './os-packages.ts';
import { unmountTree, unpackBase, useTree } from './tree.ts';
import type { CachedTree } from '../tree-cache.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

/** The storage prefix of system images. */
export const IMAGES = 'images';

/**
 * What the admin's system and finalize actions see while the shared image is
 * built: the admin's global env only. The image serves every app, so nothing
 * of the app whose build happens to make it may reach it.
 */
function imageEnv(config: Config): Record<string, string> {
  return { LANG: 'C.UTF-8', HOME: '/root', ...config.interpreters.env };
}

/** The image's storage key; it names a hash of what the image depends on, so a change to any of it makes a new image. */
export function imageKey(config: Config): string {
  const { bootstrap, commands, builder, interpreters } = config;
  const { system, finalize } = interpreters.actions.setup;
  const recipe = JSON.stringify([
    bootstrap.commands,
    bootstrap.env,
    bootstrap.packages,
    commands.install,
    builder.compression,
    // Only used when there are bootstrap packages to install.
    bootstrap.packages.length > 0 ? [system, finalize, imageEnv(config)] : null,
  ]);
  const hash = createHash('sha256').update(recipe).digest('hex').slice(0, 16);
  return `${IMAGES}/base-${hash}.${EXTENSION[builder.compression]}`;
}

export async function prepareBase(ctx: BuildContext): Promise<void> {
  if (ctx.fresh || !ctx.current) {
    await unpackImage(ctx);
  } else {
    const pkg = ctx.current;
    const cached = await ctx.cache.take(pkg.id, ctx.app, ctx.buildId);
    try {
      if (cached) ctx.log.step(`Using the cached tree of current package ${pkg.id.slice(0, 12)}`);
      if (!cached || !(await useTree(ctx, cached))) {
        ctx.log.step(`Unpacking current package ${pkg.id.slice(0, 12)} (${formatBytes(pkg.bytes)})`);
        await unpackBase(ctx, pkg.storageKey, pkg.compression, pkg.id, ctx.app);
      }
    } catch (error) {
      throw systemError(`cannot unpack the current package ${pkg.id.slice(0, 12)}: ${(error as Error).message}; a fresh build (-o fresh) does not need it`, {
        cause: error,
      });
    }
  }
  ctx.os = await readOsRelease(ctx);
  if (ctx.plan.actions.system.length > 0) {
    ctx.log.step('Running system actions');
    await runCommands(ctx, 'system', 'system action', ctx.plan.actions.system, { env: actionEnv(ctx, 'admin') });
  }
}

/** Image builds in this process, by key: a build that needs an image another is making waits for it. */
const imageBuilds = new Map<string, Promise<unknown>>();

async function unpackImage(ctx: BuildContext): Promise<void> {
  const key = imageKey(ctx.config);
  // Retention keeps the image a running build uses (an older key's too, until the build ends).
  ctx.state.builds.update(ctx.buildId, { baseImage: key });
  const seen = await ctx.storage.stat(key);
  if (isFresh(ctx, seen) && (await unpackCached(ctx, key, seen))) return;
  // Missing, expired or broken: (re)build it, one build per key at a time.
  for (let pending = imageBuilds.get(key); pending; pending = imageBuilds.get(key)) {
    ctx.log.step('Waiting for the system image another build is making');
    await pending.catch(() => undefined);
  }
  // No await between the check above and taking the key: another build must see it taken.
  const job = reuseOrBuild(ctx, key, seen);
  imageBuilds.set(key, job);
  try {
    await job;
  } finally {
    imageBuilds.delete(key);
  }
}

/** With the key taken: uses the image another build just made, or builds it. */
async function reuseOrBuild(ctx: BuildContext, key: string, seen: StoredObject | null): Promise<void> {
  const now = await ctx.storage.stat(key);
  if (now && seen?.sha256 !== now.sha256 && isFresh(ctx, now) && (await unpackCached(ctx, key, now))) return;
  if (now && !isFresh(ctx, now)) ctx.log.step(`System image is older than ${ctx.config.bootstrap.maxage} days; rebuilding it`);
  await buildImage(ctx, key);
}

function isFresh(ctx: BuildContext, cached: StoredObject | null): cached is StoredObject {
  const maxAge = ctx.config.bootstrap.maxage;
  return cached !== null && !(maxAge > 0 && Date.now() - cached.modifiedAt.getTime() > maxAge * DAY_MS);
}

/**
 * Makes the stored image the build's root (its cached tree, or unpacked);
 * false (root emptied again) when it turns out broken. The image's tree in
 * the cache is named by the stored file's hash: an image rebuilt under the
 * same key is another tree.
 */
async function unpackCached(ctx: BuildContext, key: string, cached: StoredObject): Promise<boolean> {
  const tree = await ctx.cache.take(cached.sha256, null, ctx.buildId);
  const built = `${formatBytes(cached.bytes)}, built ${cached.modifiedAt.toISOString()}`;
  ctx.log.step(tree ? `Using the cached tree of the system image (${built})` : `Unpacking system image (${built})`);
  let problem = await tryUnpack(ctx, key, cached, tree);
  if (problem === null) return true;
  // A cancelled unpack is no broken image: the build ends here (builder.ts reports why).
  if (ctx.signal?.aborted) throw systemError(`unpacking the system image stopped: ${problem}`);
  if (tree && ctx.base?.tree === tree) {
    // The cached tree fails, not necessarily the stored image: that is tried before the image is rebuilt for every app.
    ctx.log.output(`the cached tree of the system image fails (${problem}); unpacking the image`);
    ctx.state.trees.retire(tree.layers.map((layer) => layer.dir));
    await unmountTree(ctx);
    problem = await tryUnpack(ctx, key, cached, null);
    if (problem === null) return true;
    if (ctx.signal?.aborted) throw systemError(`unpacking the system image stopped: ${problem}`);
  }
  ctx.log.output(`the cached image is broken (${problem}); rebuilding it`);
  await unmountTree(ctx);
  return false;
}

/** Makes the root of the image (cached tree or unpacked) and checks it runs /bin/true; returns what is wrong, or null. */
async function tryUnpack(ctx: BuildContext, key: string, stored: StoredObject, tree: CachedTree | null): Promise<string | null> {
  try {
    if (!tree || !(await useTree(ctx, tree))) await unpackBase(ctx, key, compressionOf(key), stored.sha256, null);
  } catch (error) {
    return (error as Error).message;
  }
  const check = await inChroot(ctx, ['/bin/true'], { timeoutSeconds: 60 });
  return check.ok ? null : `/bin/true ${describeEnd(check)} in it: ${check.tail.slice(-3).join(' ')}`;
}

/** Runs the bootstrap commands into a fresh folder, installs bootstrap.packages, stores the image and uses it. */
async function buildImage(ctx: BuildContext, key: string): Promise<void> {
  const { bootstrap } = ctx.config;
  ctx.log.step('Building the system image');
  // Beside the build's root, on the same volume: it becomes the root by a rename.
  const imageRoot = join(ctx.jail.treeDir, 'image');
  await mkdir(imageRoot);
  for (const command of bootstrap.commands) {
    ctx.log.output(`$ ${command}`);
    // %workdir% becomes a quoted variable reference: no value is pasted into the script.
    const script = command.replaceAll('%workdir%', '"$UPAAS_WORKDIR"');
    const result = await runIsolatedOnHost(['/bin/sh', '-c', script], {
      env: { ...bootstrap.env, UPAAS_WORKDIR: imageRoot },
      timeoutSeconds: bootstrap.timelimit,
      signal: ctx.signal,
      jail: ctx.jail,
      onLine: (line) => ctx.log.output(line),
    });
    await failOnLimit(ctx);
    if (!result.ok) throw systemError(`bootstrap command failed: \`${command}\` ${describeEnd(result, bootstrap.timelimit)}`);
  }
  const check = await inChroot({ ...ctx, root: imageRoot }, ['/bin/true'], { timeoutSeconds: 60 });
  if (!check.ok) {
    throw systemError(`the bootstrap commands made no working image: /bin/true ${describeEnd(check)} in it`, {
      detail: check.tail.join('\n'),
    });
  }
  const imageCtx = { ...ctx, root: imageRoot };
  if (bootstrap.packages.length > 0) {
    ctx.log.step(`Installing bootstrap packages: ${bootstrap.packages.join(' ')}`);
    const env = imageEnv(ctx.config);
    await runCommands(imageCtx, 'system', 'system action', ctx.plan.actions.system, { env });
    await installPackages(imageCtx, 'system', bootstrap.packages);
    await runCommands(imageCtx, 'system', 'finalize action', ctx.plan.actions.finalize, { env });
  }
  ctx.log.step('Storing the system image');
  const { stored, index } = await storeTree(ctx, imageRoot, key, 'the system image');
  ctx.state.images.add(key, stored.bytes, JSON.stringify(index));
  ctx.log.output(`stored ${key} (${formatBytes(stored.bytes)})`);
  if (ctx.cache.enabled) {
    // The stored image becomes its cached tree, which this build's root is an overlay of like any later
    // build's; the folder it was made in goes (the cached tree counts against the volume).
    await removeTree(imageRoot);
    await unpackBase(ctx, key, compressionOf(key), stored.sha256, null);
  } else {
    await removeTree(ctx.root);
    await rename(imageRoot, ctx.root);
  }
}

async function readOsRelease(ctx: BuildContext) {
  // Read inside the chroot: a symlink in the image must not reach host files.
  const lines: string[] = [];
  const result = await inChroot(ctx, ['/bin/cat', '/etc/os-release'], { timeoutSeconds: 30, onLine: (line) => lines.push(line) });
  return result.ok ? parseOsRelease(lines.join('\n')) : null;
}
