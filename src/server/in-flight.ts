/**
 * The commands and API requests the server is running (a `run`, a rollback
 * and its deploy, a download): at stop they get builder.grace seconds to end
 * by themselves, like builds, then their signal aborts them, and the server
 * waits until each has undone what it made (a run's jail, a deploy's folder)
 * before it exits.
 */
export class InFlight {
  private readonly running = new Set<Promise<unknown>>();
  private readonly controller = new AbortController();

  /** Aborted once the server stops taking work and the grace is over. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Runs `work`, counted until it settles. */
  track<T>(work: () => Promise<T>): Promise<T> {
    const promise = work();
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
    return promise;
  }

  /** Waits up to `graceSeconds` for what runs, then aborts it and waits until it has ended. */
  async stop(graceSeconds: number): Promise<void> {
    if (this.running.size === 0) return this.controller.abort();
    const timer = setTimeout(() => this.controller.abort(), graceSeconds * 1000);
    while (this.running.size > 0) await Promise.all([...this.running]);
    clearTimeout(timer);
    this.controller.abort();
  }
}
