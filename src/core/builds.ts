/**
 * The build operation, once for every front end (a push through the queue, a
 * `build` command, a local `upaas build`, the API): one builder run whose
 * package, once current, is deployed (core/deploy.ts), then the app's
 * retention, whatever the outcome. The event sink hears build.started and
 * build.succeeded or build.failed (and the deploy's release.* events).
 */
import { type BuildOutcome, type BuildRequest, build } from '../builder/builder.ts';
import { BuildError } from '../builder/errors.ts';
import { emit } from '../events/events.ts';
import { serverLog } from '../process/server-log.ts';
import { DeployError, deployRelease } from './deploy.ts';
import { applyRetention } from './retention.ts';
import type { Services } from './services.ts';

type Needs = Pick<Services, 'config' | 'state' | 'storage' | 'events'>;

export async function runBuild(services: Needs, request: BuildRequest): Promise<BuildOutcome> {
  const app = request.app;
  const fresh = Boolean(request.fresh);
  const outcome = await build(services, {
    ...request,
    onStart: (id) => {
      emit(services.events, { event: 'build.started', app, build: { id, status: 'running', revision: null, fresh } });
      request.onStart?.(id);
    },
    afterCurrent: async (pkg, made, log) => {
      try {
        await deployRelease(services, pkg, made, log, request.signal);
      } catch (error) {
        if (!(error instanceof DeployError)) throw error;
        throw new BuildError('system', error.message.replace(/^deploy failed: /, ''), { headline: 'deploy failed' });
      }
    },
  });
  if (outcome.buildId !== null) {
    const record = services.state.builds.get(app, outcome.buildId);
    const facts = { id: outcome.buildId, revision: record?.revision ?? null, fresh: record?.fresh ?? fresh };
    if (outcome.ok) {
      const pkg = outcome.package;
      emit(services.events, {
        event: 'build.succeeded',
        app,
        build: { ...facts, status: 'succeeded' },
        package: { id: pkg.id, revision: pkg.revision, bytes: pkg.bytes },
      });
    } else {
      emit(services.events, { event: 'build.failed', app, build: { ...facts, status: 'failed', error: outcome.error.line } });
    }
    try {
      await applyRetention(services, app);
    } catch (error) {
      // The build's outcome stands; what was not deleted now is deleted after the next one (or by `doctor --fix`).
      serverLog(`retention of ${app}: ${(error as Error).message}`);
    }
  }
  return outcome;
}
