/**
 * One push's line to the post-receive shim. The server hands receive-pack a
 * private folder (mode 0700, in paths.state) with two FIFOs, named in
 * UPAAS_HOOK_DIR: the shim writes the push options and ref updates into `in`
 * and copies `out` to the pusher. Only the server's user can open the folder,
 * and only the receive-pack the server starts learns its name; the server
 * already knows the repo and who pushes, so it takes nothing else from the
 * shim, and checks every line it does take. Both FIFOs are held open
 * read-write by the server, so neither side ever blocks on open; the end of
 * `out` is the end of the server's answer. If the pusher goes away the build
 * goes on.
 */
import { constants, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import type { HookSession, HookSessions } from '../git/service.ts';
import { BoundedOutput } from '../process/bounded-output.ts';
import { type HookRequest, planPush } from './push.ts';
import type { BuildQueue } from '../core/queue.ts';

const REF_LINE = /^ref ([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (refs\/[^\s]+)$/;
const MAX_REQUEST_BYTES = 1024 * 1024;
/** How long a build waits for its push's first lines to pass through at most. */
const RELAY_WAIT_MS = 200;

export class HookSessionFactory implements HookSessions {
  constructor(
    private readonly dir: string,
    private readonly branch: string,
    private readonly queue: BuildQueue,
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
    if (this.spare) return;
    this.spare = this.makeDir();
    this.spare.catch(() => undefined);
  }

  async open(app: string, pusher: string): Promise<HookSession> {
    const spare = this.spare;
    this.spare = null;
    const dir = spare ? await spare.catch(() => this.makeDir()) : await this.makeDir();
    const flags = constants.O_RDWR | constants.O_NONBLOCK; // libuv adds O_CLOEXEC
    const input = new Socket({ fd: openSync(join(dir, 'in'), flags), readable: true, writable: false });
    const output = new Socket({ fd: openSync(join(dir, 'out'), flags), readable: false, writable: true });
    input.on('error', () => undefined);
    output.on('error', () => undefined);
    // A pusher that stops reading holds at most BoundedOutput's bound here; the build goes on.
    const bounded = new BoundedOutput(output);
    const write = (line: string) => bounded.write(`${line}\n`);
    const finish = () => output.end();
    let buffer = '';
    input.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      if (buffer.length > MAX_REQUEST_BYTES) {
        input.destroy();
        write('!     system error: the push request from the hook is too large');
        finish();
        return;
      }
      // The `end` line, not "end" closing a line such as "option backend".
      const end = `\n${buffer}`.indexOf('\nend\n');
      if (end === -1) return;
      input.destroy();
      let request: HookRequest;
      try {
        request = parseRequest(buffer.slice(0, end));
      } catch (error) {
        write(`!     system error: bad request from the post-receive hook (${(error as Error).message})`);
        finish();
        return;
      }
      const plan = planPush(request, this.branch);
      for (const note of plan.notes) write(note);
      if (!plan.build) {
        finish();
        return;
      }
      const build = { app, ...plan.build, requestedBy: pusher };
      afterRelay(() => this.queue.request(build, { line: write, done: finish }));
    });
    // The build starts once the notes above are on their way to the pusher:
    // they pass through this process again (receive-pack's output), and
    // starting a build holds its event loop for a moment. When they do not
    // come through (the pusher went away) the build starts anyway.
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
    return {
      dir,
      // After this turn of the event loop: the output is written on first.
      relayed: () => {
        if (pending) setImmediate(startPending);
      },
      close: async () => {
        startPending();
        input.destroy();
        output.destroy();
        await rm(dir, { recursive: true, force: true });
        this.prepare();
      },
    };
  }
}

/** `option VALUE`, `option-with-line-break` and `ref OLD NEW REF` lines, as the shim writes them. */
export function parseRequest(text: string): HookRequest {
  const request: HookRequest = { updates: [], options: [], brokenOptions: 0 };
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
    const ref = REF_LINE.exec(line);
    if (!ref) throw new Error(`unexpected line ${JSON.stringify(line.slice(0, 80))}`);
    request.updates.push({ old: ref[1] as string, new: ref[2] as string, ref: ref[3] as string });
  }
  return request;
}
