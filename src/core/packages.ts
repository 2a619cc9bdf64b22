/**
 * Package operations, once for every front end: finding a package by id or
 * unique prefix, listing an app's packages and releases, rolling back to a
 * kept package, and deleting a kept package's file.
 */
import { PackageStateError, type PackageRecord } from '../state/packages.ts';
import type { MadeCurrent, ReleaseRecord } from '../state/releases.ts';
import { type DeployOutput, deployRelease } from './deploy.ts';
import { CoreError } from './errors.ts';
import { applyRetention } from './retention.ts';
import type { Services } from './services.ts';

/** How short a package id may be given: as git shows abbreviated commits. */
export const MIN_PREFIX = 7;
const PREFIX = /^[0-9a-f]+$/;

type Needs = Pick<Services, 'config' | 'state' | 'storage' | 'events'>;

/** The package of `app` whose id is `given` or starts with it; a CoreError when it is no id, unknown or ambiguous. */
export function findPackage(services: Pick<Services, 'state'>, app: string, given: string): PackageRecord {
  if (!PREFIX.test(given) || given.length < MIN_PREFIX || given.length > 64) {
    throw new CoreError(`invalid package id ${JSON.stringify(given)}: expected a package id or a unique prefix of at least ${MIN_PREFIX} hex characters`, 400);
  }
  const found = services.state.packages.matching(app, given);
  if (found.length === 0) throw new CoreError(`${app} has no package ${given}`, 404);
  if (found.length > 1) {
    throw new CoreError(`package id ${given} is ambiguous: ${found.length} packages of ${app} start with it (${found.map((p) => p.id.slice(0, 12)).join(', ')})`, 409);
  }
  return found[0] as PackageRecord;
}

/** What `packages APP --json` and the API show of a package. */
export interface PackageView {
  id: string;
  parent: string | null;
  fresh: boolean;
  revision: string;
  interpreter: { type: string; version: string };
  bytes: number;
  createdAt: string;
  current: boolean;
  file: boolean;
  author: string | null;
  description: string | null;
  changelog: PackageRecord['changelog'];
  buildId: number | null;
}

/** The app's packages, newest first. */
export function listPackages(services: Pick<Services, 'state'>, app: string): PackageView[] {
  return services.state.packages.list(app).map((p) => ({
    id: p.id,
    parent: p.parent,
    fresh: p.fresh,
    revision: p.revision,
    interpreter: p.interpreter,
    bytes: p.bytes,
    createdAt: p.createdAt,
    current: p.current,
    file: p.file,
    author: p.author,
    description: p.description,
    changelog: p.changelog,
    buildId: p.buildId,
  }));
}

/** What `releases APP --json` and the API show of a release. */
export interface ReleaseView {
  version: number;
  package: string;
  kind: ReleaseRecord['kind'];
  by: string | null;
  createdAt: string;
  build: number | null;
  /** `failed`: its deploy commands failed and the package before it was made current again. */
  status: ReleaseRecord['status'];
  failure: string | null;
}

/** The app's releases, newest first. */
export function listReleases(services: Pick<Services, 'state'>, app: string): ReleaseView[] {
  return services.state.releases.list(app).map(({ version, package: pkg, kind, by, createdAt, build, status, failure }) => ({ version, package: pkg, kind, by, createdAt, build, status, failure }));
}

/**
 * Makes a kept package of `app` current again as a new release, runs the
 * app's deploy commands for it (their lines to `out`; a failure puts the
 * package before back and throws a DeployError), then applies the app's
 * retention. Refused when its file is gone or it is already current; the next
 * incremental build starts from it.
 */
export async function rollBack(
  services: Needs,
  app: string,
  given: string,
  by: string,
  out: DeployOutput,
  signal?: AbortSignal,
): Promise<{ release: ReleaseRecord; package: PackageRecord }> {
  const pkg = findPackage(services, app, given);
  let made: MadeCurrent;
  try {
    made = services.state.packages.rollBack(app, pkg.id, by);
  } catch (error) {
    if (error instanceof PackageStateError) throw new CoreError(error.message, 409);
    throw error;
  }
  try {
    await deployRelease(services, pkg, made, out, signal);
  } finally {
    await applyRetention(services, app);
  }
  return { release: made.release, package: pkg };
}

/** Deletes the stored file of a kept package of `app` (never the current one); its record stays. */
export async function deletePackageFile(services: Needs, app: string, given: string): Promise<PackageRecord> {
  const pkg = findPackage(services, app, given);
  if (pkg.current) throw new CoreError(`package ${pkg.id.slice(0, 12)} is the current package of ${app}; roll back to another one first`, 409);
  if (!pkg.file) throw new CoreError(`the file of package ${pkg.id.slice(0, 12)} of ${app} is deleted already`, 409);
  const { packages } = services.state.builds.liveBases();
  if (packages.has(pkg.id)) throw new CoreError(`a running build of ${app} starts from package ${pkg.id.slice(0, 12)}; try again when it has ended`, 409);
  if (!services.state.packages.markFileDeleted(app, pkg.id, packages)) {
    throw new CoreError(`package ${pkg.id.slice(0, 12)} of ${app} just became current or was deleted; nothing was changed`, 409);
  }
  await services.storage.delete(pkg.storageKey);
  return pkg;
}
