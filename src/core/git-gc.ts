/**
 * Housekeeping of the bare repos: `git gc --auto` after pushes, off the
 * push's path. A repo pushed to several times while its gc runs gets one more
 * run after it; runs happen one at a time, each within a time limit; a
 * stopping server ends the one that runs. What gc says goes to the server log.
 */
import { GIT_ENV } from '../git/repos.ts';
import { run } from '../process/run.ts';

const GC_SECONDS = 600;

export class GitGc {
  private readonly pending = new Set<string>();
  private running: Promise<void> | null = null;
  private readonly controller = new AbortController();

  constructor(private readonly log: (line: string) => void) {}

  /** Asks for a `git gc --auto` of the bare repo at `repo` soon; returns at once. */
  afterPush(repo: string): void {
    if (this.controller.signal.aborted) return;
    this.pending.add(repo);
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
  }

  /** Resolves once no gc is running or waiting (tests, and a graceful stop). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops taking requests and ends a running gc (git keeps a repo consistent when gc is killed). */
  async stop(): Promise<void> {
    this.pending.clear();
    this.controller.abort();
    await this.idle();
  }

  private async drain(): Promise<void> {
    // A turn of the event loop first: the push that asked ends before gc starts.
    await new Promise((resolve) => setImmediate(resolve));
    for (let repo = this.next(); repo !== undefined; repo = this.next()) {
      const lines: string[] = [];
      // In the foreground: git detaches an auto gc by default, which would escape the limit and the stop.
      const result = await run('git', ['-c', 'gc.autoDetach=false', '-c', 'maintenance.autoDetach=false', '--git-dir', repo, 'gc', '--auto', '--quiet'], {
        env: GIT_ENV,
        timeoutSeconds: GC_SECONDS,
        signal: this.controller.signal,
        onLine: (line) => lines.push(line),
      });
      if (!result.ok && !result.aborted) this.log(`upaas: git gc --auto in ${repo} failed: ${lines.slice(-3).join(' ') || `exit ${result.exitCode}`}`);
    }
  }

  private next(): string | undefined {
    const [repo] = this.pending;
    if (repo !== undefined) this.pending.delete(repo);
    return repo;
  }
}
