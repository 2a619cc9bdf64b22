/**
 * The build queue: one build per app at a time, builds of different apps in
 * parallel up to `workers`. Requests for an app that is building wait, and
 * several waiting requests coalesce into one build of the newest revision
 * (fresh if any asked for it); every waiting requester sees that build's output.
 */
import type { BuildOutcome, BuildRequest } from '../builder/builder.ts';
import { STEP } from '../builder/log.ts';

export interface QueueRequest {
  app: string;
  revision?: string;
  fresh: boolean;
  interpreterVersion?: string;
  requestedBy: string;
}

export interface Listener {
  line: (line: string) => void;
  done: (outcome: BuildOutcome | null) => void;
}

interface Job {
  request: QueueRequest;
  listeners: Set<Listener>;
  buildId: number | null;
}

export type Runner = (request: BuildRequest) => Promise<BuildOutcome>;

const STOPPING = 'the server is stopping; push again in a moment';

/** Tells requesters that their build will not run, and why (a system error line), and ends them. */
function refuse(listeners: Iterable<Listener>, why: string): void {
  for (const listener of listeners) {
    listener.line(`!     system error: ${why}`);
    listener.done(null);
  }
}

export class BuildQueue {
  private readonly running = new Map<string, Job>();
  private readonly waiting = new Map<string, Job>();
  /** Apps with a waiting job, in arrival order. */
  private readonly order: string[] = [];
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
    const waiting = this.waiting.get(request.app);
    if (waiting) {
      waiting.request = {
        ...request,
        fresh: waiting.request.fresh || request.fresh,
        interpreterVersion: request.interpreterVersion ?? waiting.request.interpreterVersion,
      };
      waiting.listeners.add(listener);
      this.announceWait(request.app, listener);
      return;
    }
    const job: Job = { request, listeners: new Set([listener]), buildId: null };
    this.waiting.set(request.app, job);
    this.order.push(request.app);
    this.announceWait(request.app, listener);
    this.pump();
  }

  /** Drops the waiting request of `app` (its repo is gone); its requesters are told `why`. */
  forget(app: string, why: string): void {
    const job = this.waiting.get(app);
    if (!job) return;
    this.waiting.delete(app);
    this.order.splice(this.order.indexOf(app), 1);
    refuse(job.listeners, `the build did not start: ${why}`);
  }

  private announceWait(app: string, listener: Listener): void {
    const running = this.running.get(app);
    if (running) {
      listener.line(`${STEP}waiting: build ${running.buildId ?? '(starting)'} of ${app} is running`);
    } else if (this.running.size >= this.workers) {
      listener.line(`${STEP}waiting: ${this.running.size} builds are running (builder.workers = ${this.workers})`);
    }
  }

  private pump(): void {
    for (let i = 0; i < this.order.length && this.running.size < this.workers; ) {
      const app = this.order[i] as string;
      if (this.running.has(app)) {
        i++;
        continue;
      }
      this.order.splice(i, 1);
      const job = this.waiting.get(app) as Job;
      this.waiting.delete(app);
      this.start(job);
    }
    if (this.running.size === 0 && this.waiting.size === 0) for (const resolve of this.idle) resolve();
  }

  private start(job: Job): void {
    const { app } = job.request;
    this.running.set(app, job);
    const emit = (line: string) => {
      for (const listener of job.listeners) listener.line(line);
    };
    this.run({
      ...job.request,
      onStart: (id) => {
        job.buildId = id;
      },
      onLine: emit,
      signal: this.controller.signal,
    })
      .then(
        (outcome) => outcome,
        (error: unknown) => {
          emit(`!     system error: ${(error as Error).message}`);
          return null;
        },
      )
      .then((outcome) => {
        this.running.delete(app);
        for (const listener of job.listeners) listener.done(outcome);
        this.pump();
      });
  }

  /** Stops taking requests, refuses the waiting ones, gives running builds `graceSeconds`, then cancels them. */
  async stop(graceSeconds: number): Promise<void> {
    this.stopping = true;
    for (const job of this.waiting.values()) refuse(job.listeners, STOPPING);
    this.waiting.clear();
    this.order.length = 0;
    if (this.running.size === 0) return;
    const finished = new Promise<void>((resolve) => this.idle.add(resolve));
    const timer = setTimeout(() => this.controller.abort(), graceSeconds * 1000);
    await finished;
    clearTimeout(timer);
  }
}
