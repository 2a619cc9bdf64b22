/**
 * A stack of undo steps for resources made one after another (a cgroup, a
 * mounted volume, a network namespace): each is pushed right after it exists,
 * and `close` undoes them newest first, every one even when one fails. A
 * resource made halfway is undone by the same stack, so cleanup lives in one
 * place and not in copies inside error branches.
 */
export class Cleanup {
  private readonly steps: { what: string; undo: () => Promise<void> | void }[] = [];
  private closed = false;

  /** Pushes the undo step of a resource that now exists. */
  defer(what: string, undo: () => Promise<void> | void): void {
    if (this.closed) throw new Error(`cleanup: ${what} made after close`);
    this.steps.push({ what, undo });
  }

  /** Undoes everything, newest first; throws one error naming every step that failed. */
  async close(): Promise<void> {
    this.closed = true;
    const failures: string[] = [];
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step.undo();
      } catch (error) {
        failures.push(`${step.what}: ${(error as Error).message}`);
      }
    }
    if (failures.length > 0) throw new Error(`cleanup failed: ${failures.join('; ')}`);
  }

  /** Runs `make` with this stack: if it throws, everything pushed so far is undone before the error goes on. */
  async build<T>(make: () => Promise<T>): Promise<T> {
    try {
      return await make();
    } catch (error) {
      await this.close().catch(() => undefined);
      throw error;
    }
  }
}
