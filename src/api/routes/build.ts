/**
 * POST /api/v1/apps/APP/builds, body (optional) `{"fresh": true, "revision":
 * "REV", "interpreter": "3.11"}`: a build like the `build` command's, queued
 * the same way (core/build-request.ts: it waits its turn, coalesces with
 * waiting pushes, and goes on when the caller goes away). 202 with its number
 * and log once it has one; 202 `{"build": null, "queued": true}` when it is
 * still waiting its turn after QUEUED_AFTER_MS; 409 when it did not start.
 */
import { VERSION } from '../../config/patterns.ts';
import { requestBuild } from '../../core/build-request.ts';
import { CoreError } from '../../core/errors.ts';
import { REVISION_INPUT } from '../../git/repos.ts';
import { API_PATH } from '../paths.ts';
import { type Reply, endpoint } from '../route.ts';

/** How long the answer waits for the build to get its number. */
const QUEUED_AFTER_MS = 5000;

const FAILURE = '!     ';

export const startBuild = endpoint({
  access: 'write',
  body: {
    fresh: { type: 'boolean' },
    revision: { type: 'string', pattern: REVISION_INPUT, expected: 'a branch, tag or commit (letters, digits and ._/^~@{}-, not starting with "-")' },
    interpreter: { type: 'string', pattern: VERSION, expected: 'a version like "3.11"' },
  },
  run: ({ services, user, repo, body }) =>
    new Promise<Reply>((resolve, reject) => {
      const app = repo.name;
      let why = 'the build did not start';
      const timer = setTimeout(() => resolve({ status: 202, body: { build: null, queued: true } }), QUEUED_AFTER_MS);
      const request = { app, revision: body.revision, fresh: body.fresh ?? false, interpreterVersion: body.interpreter, requestedBy: user.name };
      requestBuild(services, request, {
        line: (line) => {
          if (line.startsWith(FAILURE)) why = line.slice(FAILURE.length);
        },
        started: (id) => {
          clearTimeout(timer);
          const log = `${API_PATH}/apps/${app}/builds/${id}/log`;
          resolve({ status: 202, body: { build: id, log }, headers: { Location: log } });
        },
      }).then(
        // Settled before it had a number: it never started (a started one has answered already).
        () => {
          clearTimeout(timer);
          reject(new CoreError(why, 409));
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error as Error);
        },
      );
    }),
});
