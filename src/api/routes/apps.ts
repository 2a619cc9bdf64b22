/**
 * The API's read-only views of apps, each the same objects as the command
 * line's `--json`: `repos list`, `repos info`, `packages`, `releases`, `builds`.
 */
import { listPackages, listReleases } from '../../core/packages.ts';
import { describeRepository, readableRepositories } from '../../core/repos.ts';
import { endpoint } from '../route.ts';

/** GET /api/v1/apps: the apps the caller may read. */
export const listApps = endpoint({
  access: 'user',
  run: async ({ services, user }) => ({ status: 200, body: await readableRepositories(services, user) }),
});

/** GET /api/v1/apps/APP: branches, current package, last build (and grants, for admins). */
export const showApp = endpoint({
  access: 'read',
  run: async ({ services, user, repo }) => ({ status: 200, body: await describeRepository(services, user, repo) }),
});

/** GET /api/v1/apps/APP/packages: newest first. */
export const listAppPackages = endpoint({
  access: 'read',
  run: async ({ services, repo }) => ({ status: 200, body: listPackages(services, repo.name) }),
});

/** GET /api/v1/apps/APP/releases: newest first. */
export const listAppReleases = endpoint({
  access: 'read',
  run: async ({ services, repo }) => ({ status: 200, body: listReleases(services, repo.name) }),
});

/** GET /api/v1/apps/APP/builds: newest first. */
export const listAppBuilds = endpoint({
  access: 'read',
  run: async ({ services, repo }) => ({ status: 200, body: services.state.builds.list(repo.name) }),
});
