/**
 * A build asked for by a caller (the `build` command, the API's POST
 * builds), once for every front end: in the server it goes through the queue
 * like a push (waits its turn, coalesces with waiting pushes, goes on when
 * its caller goes away); outside the server it runs here, and the caller's
 * signal cancels it.
 */
import type { BuildOutcome } from '../builder/builder.ts';
import { runBuild } from './builds.ts';
import type { QueueRequest } from './queue.ts';
import type { Services } from './services.ts';

export interface BuildCaller {
  /** Each line of the build's output (and the queue's waiting notes). */
  line: (line: string) => void;
  /** Once the build has its number. */
  started?: (buildId: number) => void;
  /** A local build is cancelled when it aborts; a queued one is not one caller's to cancel. */
  signal?: AbortSignal;
}

/** Requests a build of `request.app`; resolves with its outcome, null when the queue never ran it (it told `line` why). */
export function requestBuild(services: Services, request: QueueRequest, caller: BuildCaller): Promise<BuildOutcome | null> {
  const { queue } = services;
  if (queue) return new Promise((resolve) => queue.request(request, { line: caller.line, started: caller.started, done: resolve }));
  return runBuild(services, { ...request, onLine: caller.line, onStart: caller.started, signal: caller.signal });
}
