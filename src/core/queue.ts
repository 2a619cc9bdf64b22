/**
 * The build queue: one build per app at a time, builds of different apps in
 * parallel up to `workers`. Requests for an app that is building wait, and
 * several waiting requests coalesce into one build of the newest revision
 * (fresh if any asked for it); every waiting requester sees that build's output.
 * A request `alone` (a pre-receive push, which waits for the verdict on its
 * own revision) never coalesces: it waits its turn and builds by itself.
 */
import type { BuildOutcome, BuildRequest } from '../builder/builder.ts';
import { STEP } from '../builder/log.ts';

export interface QueueRequest {
  app: string;
  revision?: string;
  fresh: boolean;
  interpreterVersion?: string;
  requestedBy: string;
  /** The bare repo to build from (BuildRequest.sourceRepo; server-made only): a pre-receive push's objects. */
  sourceRepo?: string;
  /**
   * A build of this request by itself: it joins no waiting request of the app
   * and none joins it, so its requester gets the verdict on exactly its revision.
   */
  alone?: boolean;
  /**
   * Aborted when the requester of an `alone` request is gone: its waiting
   * request is dropped and its running build cancelled (nobody else waits for it).
   */
  signal?: AbortSignal;
}

export interface Listener {
  line: (line: string) => void;
  /** The build's outcome (null when it never ran). */
  done: (outcome: BuildOutcome | null) => void;
  /** Called once the build has its number, before the build's own lines. */
  started?: (buildId: number) => void;
  /**
   * Once the build is done, the app's turn lasts until this settles too (for
   * HOLD_MS at most, and without its worker): a pre-receive push holds it
   * until its ref has moved (or not), so that the app's next build sees where
   * the ref went.
   */
  holdUntil?: Promise<unknown>;
  /**
   * Asked when the build's turn has come, before it starts: false drops this
   * listener (it has told its requester why; done(null) follows), and a build
   * nobody waits for any more does not run.
   */
  ready?: () => Promise<boolean>;
}

interface Job {
  request: QueueRequest;
  listeners: Set<Listener>;
  buildId: number | null;
}

export type Runner = (request: BuildRequest) => Promise<BuildOutcome>;

const STOPPING = 'the server is stopping; push again in a moment';
/**
 * How long an app's turn is held after its build at most: a pusher that stops
 * reading keeps its receive-pack (and its ref update) waiting, and must not
 * keep the app from building for good. The next build checks where the ref
 * is anyway.
 */
const HOLD_MS = 30_000;
const GONE = 'the build did not start: its requester went away';

/** Tells requesters that their build will not run, and why (a system error line), and ends them. */
function refuse(listeners: Iterable<Listener>, why: string): void {
  for (const listener of listeners) {
    listener.line(`!     system error: ${why}`);
    listener.done(null);
  }
}

/** Resolves once `work` has settled or `signal` is aborted, whichever comes first. */
async function settledOrAborted(work: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  let onAbort = (): void => undefined;
  const abort = new Promise<void>((resolve) => {
    onAbort = resolve;
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([work.catch(() => undefined), abort]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** The requester's signal of an `alone` request (a coalescing build is not one requester's to cancel). */
const requesterSignal = (request: QueueRequest): AbortSignal | undefined => (request.alone ? request.signal : undefined);

export class BuildQueue {
  /** Apps whose turn it is (building, or holding the turn after the build). */
  private readonly running = new Map<string, Job>();
  /** Builds in progress: what builder.workers counts (a held turn uses no worker). */
  private building = 0;
  /** Waiting jobs, in arrival order (an app has more than one when some are `alone`). */
  private readonly waiting: Job[] = [];
  private stopping = false;
  private readonly controller = new AbortController();
  private readonly idle = new Set<() => void>();

  constructor(
    private readonly run: Runner,
    private readonly workers: number,
  ) {}

  /** Queues a build; the listener gets its lines and its outcome (null when it never ran). */
  request(request: QueueRequest, listener: Listener): void {
    if (this.stopping) return refuse([listener], STOPPING);
    const last = this.waiting.findLast((job) => job.request.app === request.app);
    if (last && !last.request.alone && !request.alone) {
      last.request = {
        ...request,
        fresh: last.request.fresh || request.fresh,
        interpreterVersion: request.interpreterVersion ?? last.request.interpreterVersion,
      };
      last.listeners.add(listener);
      this.announceWait(request.app, listener);
      return;
    }
    const job: Job = { request, listeners: new Set([listener]), buildId: null };
    const requester = requesterSignal(request);
    if (requester?.aborted) return refuse(job.listeners, GONE);
    requester?.addEventListener('abort', () => this.drop(job, GONE), { once: true });
    this.waiting.push(job);
    this.announceWait(request.app, listener);
    this.pump();
  }

  /** Drops the waiting requests of `app` (its repo is gone); their requesters are told `why`. */
  forget(app: string, why: string): void {
    for (const job of this.waiting.filter((waiting) => waiting.request.app === app)) this.drop(job, `the build did not start: ${why}`);
  }

  /** Takes `job` off the waiting list, if it still waits, and tells its requesters `why`. */
  private drop(job: Job, why: string): void {
    const at = this.waiting.indexOf(job);
    if (at === -1) return;
    this.waiting.splice(at, 1);
    refuse(job.listeners, why);
    this.pump();
  }

  private announceWait(app: string, listener: Listener): void {
    const running = this.running.get(app);
    if (running) {
      listener.line(`${STEP}waiting: build ${running.buildId ?? '(starting)'} of ${app} is running`);
    } else if (this.building >= this.workers) {
      listener.line(`${STEP}waiting: ${this.building} builds are running (builder.workers = ${this.workers})`);
    }
  }

  private pump(): void {
    for (let i = 0; i < this.waiting.length && this.building < this.workers; ) {
      const job = this.waiting[i] as Job;
      if (this.running.has(job.request.app)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.start(job);
    }
    if (this.running.size === 0 && this.waiting.length === 0) for (const resolve of this.idle) resolve();
  }

  /** Gives `job` its app's turn; the next build of the app waits until the turn is over. */
  private start(job: Job): void {
    const { app } = job.request;
    this.running.set(app, job);
    this.building++;
    let worker = true;
    const release = () => {
      if (!worker) return;
      worker = false;
      this.building--;
      this.pump();
    };
    void this.turn(job, release).finally(() => {
      this.running.delete(app);
      release();
      this.pump();
    });
  }

  /** One job's turn: the listeners that still want it, its build, how it went, and any hold of the turn after it. */
  private async turn(job: Job, releaseWorker: () => void): Promise<void> {
    // Without checks the build starts at once, in this turn of the event loop.
    if ([...job.listeners].some((listener) => listener.ready)) await this.admit(job);
    if (job.listeners.size === 0) return;
    if (requesterSignal(job.request)?.aborted) return refuse(job.listeners, GONE);
    const outcome = await this.build(job);
    releaseWorker();
    for (const listener of job.listeners) listener.done(outcome);
    const holds = [...job.listeners].flatMap((listener) => (listener.holdUntil ? [listener.holdUntil] : []));
    if (holds.length === 0) return;
    // A hold ends after HOLD_MS, or with the server's cancel (builder.grace is over), at the latest.
    const limit = AbortSignal.any([this.controller.signal, AbortSignal.timeout(HOLD_MS)]);
    await settledOrAborted(Promise.allSettled(holds), limit);
  }

  /** Asks each listener with a `ready` check whether the build should still run; drops (and ends) those that say no. */
  private async admit(job: Job): Promise<void> {
    for (const listener of [...job.listeners]) {
      if (!listener.ready) continue;
      const ready = await listener.ready().catch((error: unknown) => {
        listener.line(`!     system error: ${(error as Error).message}`);
        return false;
      });
      if (ready) continue;
      job.listeners.delete(listener);
      listener.done(null);
    }
  }

  /** Runs the job's build, its lines to every listener; null when the runner failed outright. */
  private async build(job: Job): Promise<BuildOutcome | null> {
    const { alone: _alone, signal: _signal, ...request } = job.request;
    const requester = requesterSignal(job.request);
    const emit = (line: string) => {
      for (const listener of job.listeners) listener.line(line);
    };
    try {
      return await this.run({
        ...request,
        onStart: (id) => {
          job.buildId = id;
          for (const listener of job.listeners) listener.started?.(id);
        },
        onLine: emit,
        signal: requester ? AbortSignal.any([this.controller.signal, requester]) : this.controller.signal,
      });
    } catch (error) {
      emit(`!     system error: ${(error as Error).message}`);
      return null;
    }
  }

  /** Stops taking requests, refuses the waiting ones, gives running builds `graceSeconds`, then cancels them. */
  async stop(graceSeconds: number): Promise<void> {
    this.stopping = true;
    for (const job of this.waiting.splice(0)) refuse(job.listeners, STOPPING);
    if (this.running.size === 0) return;
    const finished = new Promise<void>((resolve) => this.idle.add(resolve));
    const timer = setTimeout(() => this.controller.abort(), graceSeconds * 1000);
    await finished;
    clearTimeout(timer);
  }
}
