/**
 * One push's line to the post-receive shim. Before the server runs
 * receive-pack it makes a private folder (mode 0700, in paths.state) with two
 * FIFOs and names it in UPAAS_HOOK_DIR: the shim writes the push options and
 * ref updates into `in` and copies `out` to the pusher. The server already
 * knows the repo and who pushes, so it takes nothing else from the shim, and
 * checks every line it does take. Both FIFOs are held open read-write by the
 * server, so neither side ever blocks on open; the end of `out` is the end of
 * the server's answer. If the pusher goes away the build goes on.
 */
import { constants, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import type { HookSession, HookSessions } from '../git/service.ts';
import { type HookRequest, planPush } from './push.ts';
import type { BuildQueue } from './queue.ts';

const REF_LINE = /^ref ([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (refs\/[^\s]+)$/;
const MAX_REQUEST_BYTES = 1024 * 1024;

export class HookSessionFactory implements HookSessions {
  constructor(
    private readonly dir: string,
    private readonly branch: string,
    private readonly queue: BuildQueue,
  ) {}

  /** The next push's folder, made ahead: mkfifo is a process start the push need not wait for. */
  private spare: Promise<string> | null = null;

  private async makeDir(): Promise<string> {
    const dir = await mkdtemp(join(this.dir, 'push-'));
    await execa('mkfifo', ['-m', '0600', '--', join(dir, 'in'), join(dir, 'out')]);
    return dir;
  }

  async open(app: string, pusher: string): Promise<HookSession> {
    const next = this.spare ?? this.makeDir();
    const spare = this.makeDir();
    this.spare = spare;
    spare.catch(() => {
      if (this.spare === spare) this.spare = null;
    });
    const dir = await next;
    const flags = constants.O_RDWR | constants.O_NONBLOCK; // libuv adds O_CLOEXEC
    const input = new Socket({ fd: openSync(join(dir, 'in'), flags), readable: true, writable: false });
    const output = new Socket({ fd: openSync(join(dir, 'out'), flags), readable: false, writable: true });
    input.on('error', () => undefined);
    output.on('error', () => undefined);
    const write = (line: string) => {
      if (!output.destroyed && !output.writableEnded) output.write(`${line}\n`);
    };
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
      this.queue.request({ app, ...plan.build, requestedBy: pusher }, { line: write, done: finish });
    });
    return {
      dir,
      close: async () => {
        input.destroy();
        output.destroy();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}

/** `option VALUE` and `ref OLD NEW REF` lines, as the shim writes them. */
export function parseRequest(text: string): HookRequest {
  const request: HookRequest = { updates: [], options: [] };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('option ')) {
      request.options.push(line.slice('option '.length));
      continue;
    }
    const ref = REF_LINE.exec(line);
    if (!ref) throw new Error(`unexpected line ${JSON.stringify(line.slice(0, 80))}`);
    request.updates.push({ old: ref[1] as string, new: ref[2] as string, ref: ref[3] as string });
  }
  return request;
}
