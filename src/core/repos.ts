/**
 * Repository operations, once for every front end: create, delete (with
 * everything the server kept of the app), list what a user may read, describe
 * one, grant and revoke access.
 */
import { randomBytes } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { DELETED_REPO_PREFIX, branches, createRepo, existingRepoPath, listRepos, repoNameFrom } from '../git/repos.ts';
import { removeTree } from '../sandbox/mounts.ts';
import { BusyError } from '../state/builds.ts';
import type { DeletedRepo } from '../state/apps.ts';
import { type AccessLevel, type User, UserError, allows } from '../state/users.ts';
import { CoreError } from './errors.ts';
import type { Repo } from './access.ts';
import type { Services } from './services.ts';

/** Creates an empty repo to push an app into; refused when the name is taken. */
export async function createRepository(services: Pick<Services, 'config'>, name: string): Promise<Repo> {
  const app = repoNameFrom(name);
  if (existingRepoPath(services.config.paths.repos, app) !== null) throw new CoreError(`repository ${app} exists already`);
  return { name: app, path: await createRepo(services.config.paths.repos, app, services.config.apps.branch) };
}

/**
 * Deletes a repo and everything kept of its app: grants, builds and their
 * logs, packages (records and stored files) and the current-package pointer;
 * a tombstone counts what was there. Refused while the app builds. The repo
 * is first moved out of reach, so that no push or build can start on it while
 * the rest goes; a build that started just before is seen by the state's own
 * check, and the repo comes back.
 */
export async function deleteRepository(services: Services, name: string, by: string | null): Promise<DeletedRepo> {
  const { config, state, storage } = services;
  const app = repoNameFrom(name);
  const path = existingRepoPath(config.paths.repos, app);
  const known = state.builds.latest(app) !== null || state.packages.list(app).length > 0 || state.users.grants(app).length > 0;
  if (path === null && !known) throw new CoreError(`no repository named ${app}`, 404);
  const running = state.builds.liveFor(app);
  if (running) throw new BusyError(running);
  const trash = path === null ? null : join(config.paths.repos, `${DELETED_REPO_PREFIX}${app}-${randomBytes(6).toString('hex')}`);
  if (path !== null && trash !== null) await rename(path, trash);
  let forgotten;
  try {
    forgotten = state.apps.forget(app, by);
  } catch (error) {
    if (path !== null && trash !== null) await rename(trash, path);
    throw error;
  }
  services.queue?.forget(app, `repository ${app} was deleted`);
  if (trash !== null) await removeTree(trash);
  for (const key of new Set([...forgotten.storageKeys, ...(await storage.list(`packages/${app}`)).map((o) => o.key)])) {
    await storage.delete(key);
  }
  await removeTree(join(config.paths.state, 'logs', app));
  return forgotten.tombstone;
}

export interface RepoSummary {
  name: string;
  access: AccessLevel;
  current: string | null;
}

/** The repos `user` may read, by name. */
export async function readableRepositories(services: Pick<Services, 'config' | 'state'>, user: User): Promise<RepoSummary[]> {
  const { config, state } = services;
  return (await listRepos(config.paths.repos))
    .map((name) => ({ name, access: state.users.accessTo(user, name), current: state.packages.current(name)?.id ?? null }))
    .filter((repo) => allows(repo.access, 'read'));
}

/** Branches, current package, last build and (for admins) grants of a repo the caller may read. */
export async function describeRepository(services: Pick<Services, 'config' | 'state'>, user: User, repo: Repo) {
  const { config, state } = services;
  const current = state.packages.current(repo.name);
  return {
    name: repo.name,
    branches: await branches(repo.path),
    deployBranch: config.apps.branch,
    current: current ? { id: current.id, revision: current.revision, createdAt: current.createdAt } : null,
    lastBuild: state.builds.latest(repo.name),
    grants: user.admin ? state.users.grants(repo.name) : undefined,
  };
}

/** Lets `userName` read or write the repo `name` (which must exist). */
export function grantAccess(services: Pick<Services, 'config' | 'state'>, name: string, userName: string, level: 'read' | 'write'): void {
  const app = repoNameFrom(name);
  if (existingRepoPath(services.config.paths.repos, app) === null) throw new CoreError(`no repository named ${app}`, 404);
  if (!services.state.users.get(userName)) throw new UserError(`no user named ${userName}`);
  services.state.users.grant(app, userName, level);
}

/** Takes `userName`'s access to the repo `name` away. */
export function revokeAccess(services: Pick<Services, 'state'>, name: string, userName: string): void {
  services.state.users.revoke(repoNameFrom(name), userName);
}
