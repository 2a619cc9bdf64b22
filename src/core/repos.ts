/**
 * Repository operations, once for every front end: create, delete (with
 * everything the server kept of the app), list what a user may read, describe
 * one, grant and revoke access.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rename, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { appSettings } from '../config/config.ts';
import { branches, createRepo, existingRepoPath, isRepoName, listRepos, repoNameFrom, trashName, trashedApp } from '../git/repos.ts';
import { logFile, logFolder } from '../builder/log.ts';
import { collectTrees } from './retention.ts';
import { removeTree } from '../sandbox/mounts.ts';
import { BusyError } from '../state/builds.ts';
import type { DeletedRepo, Forgotten } from '../state/apps.ts';
import { type AccessLevel, type User, UserError, allows } from '../state/users.ts';
import { CoreError } from './errors.ts';
import type { Repo } from './access.ts';
import type { Services } from './services.ts';

/** Creates an empty repo to push an app into; refused when the name is taken or records of a deleted one are left. */
export async function createRepository(services: Pick<Services, 'config' | 'state'>, name: string): Promise<Repo> {
  const app = repoNameFrom(name);
  if (existingRepoPath(services.config.paths.repos, app) !== null) throw new CoreError(`repository ${app} exists already`);
  if (services.state.apps.known(app)) {
    throw new CoreError(`records of a deleted repository ${app} are left (its deletion was cut short): finish it with "repos delete ${app} --yes" first`);
  }
  return { name: app, path: await createRepo(services.config.paths.repos, app, appSettings(services.config, app).branch) };
}

/**
 * Deletes a repo and everything kept of its app: grants, builds and their
 * logs, packages (records and stored files) and the current-package pointer;
 * a tombstone counts what was there. Refused while the app builds. The repo
 * is first moved out of reach (to a name that says whose it was), so that no
 * push or build can start on it while the rest goes; a build that started
 * just before is seen by the state's own check, and the repo comes back. A
 * deletion cut short by a crash is finished at the next start (sweepDeletions).
 */
export async function deleteRepository(services: Services, name: string, by: string | null): Promise<DeletedRepo> {
  const { config, state } = services;
  const app = repoNameFrom(name);
  const path = existingRepoPath(config.paths.repos, app);
  if (path === null && !state.apps.known(app)) throw new CoreError(`no repository named ${app}`, 404);
  const running = state.builds.liveFor(app);
  if (running) throw new BusyError(running);
  const trash = path && join(config.paths.repos, trashName(app, randomBytes(6).toString('hex')));
  if (path && trash) await rename(path, trash);
  let forgotten;
  try {
    forgotten = state.apps.forget(app, by);
  } catch (error) {
    // Only the records decide: while they are there, so is the repo.
    if (path && trash) await rename(trash, path);
    throw error;
  }
  services.queue?.forget(app, `repository ${app} was deleted`);
  await removeFiles(services, app, forgotten);
  if (trash) await removeTree(trash);
  await collectTrees(services);
  return forgotten.tombstone;
}

/**
 * Removes exactly the files forgotten records named (their packages' storage
 * objects, their builds' log files): never by name, so a new repo of the
 * same name made meanwhile keeps its own.
 */
async function removeFiles(services: Pick<Services, 'config' | 'storage'>, app: string, forgotten: Forgotten): Promise<void> {
  for (const key of forgotten.storageKeys) await services.storage.delete(key);
  const logs = logFolder(services.config.paths.state, app);
  for (const id of forgotten.buildIds) await rm(logFile(services.config.paths.state, app, id), { force: true });
  await rmdir(logs).catch(() => undefined);
}

/** Forgets the records of `app` and removes the files they name. */
async function forgetApp(services: Pick<Services, 'config' | 'state' | 'storage'>, app: string, by: string): Promise<void> {
  await removeFiles(services, app, services.state.apps.forget(app, by));
  await collectTrees(services);
}

/**
 * At server start: finishes deletions a crash cut short (a repo moved out of
 * reach whose records may still be there), and forgets records kept under
 * names no repo can have (an older version took "a.git" for an app of its own).
 */
export async function sweepDeletions(services: Pick<Services, 'config' | 'state' | 'storage'>, log: (line: string) => void): Promise<void> {
  const { config, state } = services;
  for (const entry of await readdir(config.paths.repos).catch(() => [] as string[])) {
    const app = trashedApp(entry);
    if (app === undefined) continue;
    try {
      if (state.apps.known(app) && existingRepoPath(config.paths.repos, app) === null) await forgetApp(services, app, 'upaas (an interrupted repos delete)');
      await removeTree(join(config.paths.repos, entry));
      log(`upaas: finished the deletion of repository ${app}, cut short before`);
    } catch (error) {
      log(`upaas: could not finish the deletion of repository ${app}: ${(error as Error).message}`);
    }
  }
  for (const name of state.apps.names().filter((n) => !isRepoName(n))) {
    try {
      await forgetApp(services, name, 'upaas (a name no repo can have)');
      log(`upaas: forgot the records kept under ${JSON.stringify(name)}, a name no repository can have`);
    } catch (error) {
      log(`upaas: could not forget the records under ${JSON.stringify(name)}: ${(error as Error).message}`);
    }
  }
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
    deployBranch: appSettings(config, repo.name).branch,
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
