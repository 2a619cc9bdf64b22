/**
 * The build operation, once for every front end (a push through the queue, a
 * `build` command, a local `upaas build`): one builder run, then the app's
 * retention, whatever the outcome.
 */
import { type BuildOutcome, type BuildRequest, build } from '../builder/builder.ts';
import { serverLog } from '../process/server-log.ts';
import { applyRetention } from './retention.ts';
import type { Services } from './services.ts';

type Needs = Pick<Services, 'config' | 'state' | 'storage'>;

export async function runBuild(services: Needs, request: BuildRequest): Promise<BuildOutcome> {
  const outcome = await build(services, request);
  if (outcome.buildId !== null) {
    try {
      await applyRetention(services, request.app);
    } catch (error) {
      // The build's outcome stands; what was not deleted now is deleted after the next one (or by `doctor --fix`).
      serverLog(`retention of ${request.app}: ${(error as Error).message}`);
    }
  }
  return outcome;
}
