/**
 * One push's line to the hook shims. The server hands receive-pack a private
 * folder (mode 0700, in paths.state) with two FIFOs, named in UPAAS_HOOK_DIR:
 * a shim writes the push options and ref updates into `in` and copies `out`
 * to the pusher. Only the server's user can open the folder, and only the
 * receive-pack the server starts learns its name; the server already knows
 * the repo and who pushes, so it takes nothing else from the shim, and checks
 * every line it does take. Both FIFOs are held open read-write by the server,
 * so neither side ever blocks on open; the end of `out` is the end of the
 * server's answer.
 *
 * Which shim talks depends on the app's apps.reject_failed_builds:
 * - off: post-receive, after the refs moved; the build starts once the
 *   push's first lines are out, and goes on if the pusher goes away.
 * - on: the folder holds a `pre-receive` marker, and pre-receive talks,
 *   before any ref moved. The build reads the pushed objects from their
 *   quarantine through a temporary repo (made here, removed when the build is
 *   done); its outcome goes into the folder's `verdict` file before the answer
 *   ends: `accept`, or `refuse REF`, which the update shim turns into a refusal
 *   of REF alone (the push's other refs go through). The app's next build
 *   waits until this push is over, and a push whose branch moved while it
 *   waited is refused before it builds; a push that goes away cancels its
 *   build. post-receive then has nothing to do.
 */
import { constants, openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import type { BuildOutcome } from '../builder/builder.ts';
import { type Config, appSettings } from '../config/config.ts';
import type { GitGc } from '../core/git-gc.ts';
import type { BuildQueue } from '../core/queue.ts';
import { existingRepoPath, refTarget } from '../git/repos.ts';
import { makeSourceRepo, quarantineFolder } from '../git/source-repo.ts';
import type { HookSession, HookSessions } from '../git/service.ts';
import { BoundedOutput } from '../process/bounded-output.ts';
import { serverLog } from '../process/server-log.ts';
import { type HookRequest, type PushPlan, type RefUpdate, planPush } from './push.ts';

const REF_LINE = /^ref ([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (refs\/[^\s]+)$/;
/** git's quarantine folder name (tmp_objdir "incoming" + mkdtemp's letters), as the pre-receive shim sends it. */
const QUARANTINE_LINE = /^quarantine (tmp_objdir-incoming-[A-Za-z0-9]{6,32})$/;
const MAX_REQUEST_BYTES = 1024 * 1024;
/** How long a build waits for its push's first lines to pass through at most. */
const RELAY_WAIT_MS = 200;
/** In a push's folder: the server builds this push from pre-receive (the shims read it). */
const PRE_RECEIVE_MARKER = 'pre-receive';
/** In a push's folder: the server's verdict for the pre-receive and update shims. */
const VERDICT = 'verdict';
const ZERO = /^0+$/;

/** What a push asks to build. */
type Build = NonNullable<PushPlan['build']>;

/** How the pushes of one app are handled. */
interface PushMode {
  branch: string;
  /** The app's bare repo when a failed build rejects the push (apps.reject_failed_builds), else null. */
  rejectIn: string | null;
}

/** What the handling of one push's request needs to know and do. */
interface Push {
  app: string;
  pusher: string;
  dir: string;
  mode: PushMode;
  write: (line: string) => void;
  finish: () => void;
  /** Resolves once the push's first lines are on their way (or 200 ms passed, or the push is over). */
  relayed: () => Promise<void>;
  /** Aborted when the push is over (receive-pack ended). */
  over: AbortSignal;
  /** Resolves when the push is over. */
  ended: Promise<void>;
}


export class HookSessionFactory implements HookSessions {
  /** `config`: each app's deploy branch and apps.reject_failed_builds, and where the repos are. */
  constructor(
    private readonly dir: string,
    private readonly config: Config,
    private readonly queue: BuildQueue,
    /** Housekeeping of each repo a push reached, after the push (none in unit tests). */
    private readonly gc?: GitGc,
  ) {}

  /**
   * The next push's folder, made ahead: mkfifo is a process start, and
   * starting a process stalls the server for a moment, so it happens at
   * server start and after each push, never while one is being received.
   */
  private spare: Promise<string> | null = null;

  private async makeDir(): Promise<string> {
    const dir = await mkdtemp(join(this.dir, 'push-'));
    await execa('mkfifo', ['-m', '0600', '--', join(dir, 'in'), join(dir, 'out')]);
    return dir;
  }

  /** Makes the spare folder unless there is one. */
  prepare(): void {
    if (this.spare || this.closed) return;
    this.spare = this.makeDir();
    this.spare.catch(() => undefined);
  }

  private closed = false;

  /** At server stop: no more spare folders, and the one made ahead is removed. */
  async close(): Promise<void> {
    this.closed = true;
    const spare = this.spare;
    this.spare = null;
    const dir = await spare?.catch(() => null);
    if (dir) await rm(dir, { recursive: true, force: true });
  }

  /** The app's deploy branch and whether (and in which repo) its builds decide its pushes. */
  private modeOf(app: string): PushMode {
    const settings = appSettings(this.config, app);
    return { branch: settings.branch, rejectIn: settings.reject_failed_builds ? existingRepoPath(this.config.paths.repos, app) : null };
  }

  async open(app: string, pusher: string): Promise<HookSession> {
    const spare = this.spare;
    this.spare = null;
    const dir = spare ? await spare.catch(() => this.makeDir()) : await this.makeDir();
    const mode = this.modeOf(app);
    // The shim that reports this push: pre-receive when its build decides it.
    const hook = mode.rejectIn ? 'pre-receive' : 'post-receive';
    if (mode.rejectIn) await writeFile(join(dir, PRE_RECEIVE_MARKER), '', { mode: 0o600 });
    const flags = constants.O_RDWR | constants.O_NONBLOCK; // libuv adds O_CLOEXEC
    const input = new Socket({ fd: openSync(join(dir, 'in'), flags), readable: true, writable: false });
    const output = new Socket({ fd: openSync(join(dir, 'out'), flags), readable: false, writable: true });
    input.on('error', () => undefined);
    output.on('error', () => undefined);
    // A pusher that stops reading holds at most BoundedOutput's bound here; the build goes on.
    const bounded = new BoundedOutput(output);
    const write = (line: string) => bounded.write(`${line}\n`);
    const finish = () => output.end();
    // The build starts once the push's first lines are on their way to the
    // pusher: they pass through this process again (receive-pack's output),
    // and starting a build holds its event loop for a moment. When they do
    // not come through (the pusher went away) the build starts anyway.
    let pending: (() => void) | null = null;
    let timer: NodeJS.Timeout | undefined;
    const startPending = () => {
      clearTimeout(timer);
      const start = pending;
      pending = null;
      start?.();
    };
    const afterRelay = (start: () => void) => {
      pending = start;
      timer = setTimeout(startPending, RELAY_WAIT_MS);
    };
    const over = new AbortController();
    let end = () => undefined as void;
    const ended = new Promise<void>((resolve) => {
      end = resolve;
    });
    const push: Push = { app, pusher, dir, mode, write, finish, relayed: () => new Promise((resolve) => afterRelay(resolve)), over: over.signal, ended };
    let buffer = '';
    // Whether a hook reported the push (its objects, and maybe refs, arrived).
    let received = false;
    input.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      if (buffer.length > MAX_REQUEST_BYTES) {
        input.destroy();
        write('!     system error: the push request from the hook is too large');
        finish();
        return;
      }
      // The `end` line, not "end" closing a line such as "option backend".
      const at = `\n${buffer}`.indexOf('\nend\n');
      if (at === -1) return;
      input.destroy();
      received = true;
      let request: HookRequest;
      try {
        request = parseRequest(buffer.slice(0, at));
      } catch (error) {
        write(`!     system error: bad request from the ${hook} hook (${(error as Error).message})`);
        finish();
        return;
      }
      if (request.hook !== hook) {
        write(`!     system error: the ${request.hook} hook reported this push, which the server did not expect; push again`);
        finish();
        return;
      }
      if (mode.rejectIn) void this.decide(push, mode.rejectIn, request);
      else this.buildAfterUpdate(push, request, afterRelay);
    });
    return {
      dir,
      // After this turn of the event loop: the output is written on first.
      relayed: () => {
        if (pending) setImmediate(startPending);
      },
      close: async () => {
        // First: a build that decides a push does not start once the push is over.
        over.abort();
        startPending();
        end();
        input.destroy();
        output.destroy();
        await rm(dir, { recursive: true, force: true });
        this.prepare();
        if (received) {
          const repo = existingRepoPath(this.config.paths.repos, app);
          if (repo) this.gc?.afterPush(repo);
        }
      },
    };
  }

  /** post-receive (the refs moved): the notes, then the build once they are through; the pusher sees its output. */
  private buildAfterUpdate(push: Push, request: HookRequest, afterRelay: (start: () => void) => void): void {
    const plan = planPush(request, push.mode.branch);
    for (const note of plan.notes) push.write(note);
    if (!plan.build) return push.finish();
    const build = { app: push.app, ...plan.build, requestedBy: push.pusher };
    afterRelay(() => this.queue.request(build, { line: push.write, done: push.finish }));
  }

  /**
   * pre-receive (no ref moved yet): the notes, the build of the deploy branch
   * if the push updates it, and the verdict for the shims. Without a verdict
   * (the server failed to write one) the pre-receive shim refuses the push.
   */
  private async decide(push: Push, repo: string, request: HookRequest): Promise<void> {
    const plan = planPush(request, push.mode.branch, true);
    for (const note of plan.notes) push.write(note);
    let accepted = false;
    try {
      if (plan.build && plan.update) accepted = await this.buildBeforeUpdate(push, repo, request, plan.build, plan.update);
    } catch (error) {
      serverLog(`push to ${push.app} by ${push.pusher}: the pushed revision could not be prepared for its build: ${(error as Error).message}`);
      push.write(`!     system error: the pushed revision could not be prepared for its build; ${push.mode.branch} stays where it was`);
    } finally {
      const verdict = plan.update && !accepted ? `refuse ${plan.update.ref}` : 'accept';
      await writeFile(join(push.dir, VERDICT), `${verdict}\n`, { mode: 0o600 }).catch(() => undefined);
      push.finish();
    }
  }

  /**
   * Builds the pushed revision from a temporary repo over the quarantined
   * objects, waiting its turn (alone: it coalesces with no other request);
   * true when the build succeeded. The temporary repo is gone when it returns.
   */
  private async buildBeforeUpdate(push: Push, repo: string, request: HookRequest, build: Build, update: RefUpdate): Promise<boolean> {
    await push.relayed();
    if (push.over.aborted) return false;
    const folder = await mkdtemp(join(push.dir, 'source-'));
    try {
      const quarantine = await quarantineFolder(repo, request.quarantine);
      const sourceRepo = await makeSourceRepo(folder, repo, quarantine, push.mode.branch, request.updates);
      const outcome = await new Promise<BuildOutcome | null>((resolve) => {
        this.queue.request(
          { app: push.app, ...build, requestedBy: push.pusher, sourceRepo, alone: true, signal: push.over },
          { line: push.write, done: resolve, ready: () => this.branchUnmoved(push, repo, update), holdUntil: push.ended },
        );
      });
      return outcome?.ok === true;
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  }

  /** Whether the deploy branch is still where the push found it, checked when its build's turn comes; says so when not. */
  private async branchUnmoved(push: Push, repo: string, update: RefUpdate): Promise<boolean> {
    const now = await refTarget(repo, update.ref);
    if (now === (ZERO.test(update.old) ? null : update.old)) return true;
    push.write(`!     user error: ${push.mode.branch} moved while this push waited for its build (another push); pull and push again`);
    return false;
  }
}

/** `hook pre-receive`, `quarantine NAME`, `option VALUE`, `option-with-line-break` and `ref OLD NEW REF` lines, as the shims write them. */
export function parseRequest(text: string): HookRequest {
  const request: HookRequest = { hook: 'post-receive', updates: [], options: [], brokenOptions: 0 };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('option ')) {
      request.options.push(line.slice('option '.length));
      continue;
    }
    if (line === 'option-with-line-break') {
      request.brokenOptions += 1;
      continue;
    }
    if (line === 'hook pre-receive') {
      request.hook = 'pre-receive';
      continue;
    }
    const quarantine = QUARANTINE_LINE.exec(line);
    if (quarantine && request.quarantine === undefined) {
      request.quarantine = quarantine[1] as string;
      continue;
    }
    const ref = REF_LINE.exec(line);
    if (!ref) throw new Error(`unexpected line ${JSON.stringify(line.slice(0, 80))}`);
    request.updates.push({ old: ref[1] as string, new: ref[2] as string, ref: ref[3] as string });
  }
  return request;
}
