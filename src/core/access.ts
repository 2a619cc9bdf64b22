/**
 * Who may use which repo: the one check every front end (admin commands, git
 * over SSH and HTTP, the API) calls. A repo that does not exist and a repo the
 * caller may not read get the same answer, word for word, so no caller learns
 * which names exist; a reader who asks for write learns only what reading
 * already told them.
 */
import { existingRepoPath, repoNameFrom } from '../git/repos.ts';
import { type User, allows } from '../state/users.ts';
import { CoreError } from './errors.ts';
import type { Services } from './services.ts';

export interface Repo {
  /** The app name. */
  name: string;
  /** The bare repo on the host; never shown to a client. */
  path: string;
}

/** Refused: 404 when the caller may not know the repo exists, 403 when it may read it but not write it. */
export class AccessError extends CoreError {
  constructor(
    message: string,
    override readonly status: 403 | 404,
  ) {
    super(message, status);
    this.name = 'AccessError';
  }
}

/** The one answer for "no such repo" and "no access". */
export const noSuchRepo = (name: string) => new AccessError(`repository ${name} does not exist or you have no access to it`, 404);

/**
 * The repo `name` for `user` with at least `needs`, or an AccessError. The
 * name is checked first (RepoError: a bad name says nothing about existence).
 */
export function openRepo(services: Pick<Services, 'config' | 'state'>, user: User, name: string, needs: 'read' | 'write'): Repo {
  const app = repoNameFrom(name);
  const level = services.state.users.accessTo(user, app);
  const path = allows(level, 'read') ? existingRepoPath(services.config.paths.repos, app) : null;
  if (path === null) throw noSuchRepo(app);
  if (!allows(level, needs)) throw new AccessError(`you may read repository ${app} but not write to it`, 403);
  return { name: app, path };
}
