/**
 * The local socket (in paths.state, mode 0600) that post-receive shims talk
 * to: one JSON request per connection, answered with the build's output lines.
 * If the pusher goes away the build goes on and its log is kept.
 */
import { chmod, rm } from 'node:fs/promises';
import { type Server, type Socket, createServer } from 'node:net';
import { basename, dirname, resolve } from 'node:path';
import { repoNameFrom } from '../git/repos.ts';
import type { HookRequest } from '../hook/post-receive.js';
import type { BuildQueue } from './queue.ts';
import { planPush } from './push.ts';

export async function startHookSocket(path: string, reposDir: string, branch: string, queue: BuildQueue): Promise<Server> {
  await rm(path, { force: true });
  const server = createServer((socket) => handle(socket, reposDir, branch, queue));
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(path, () => done());
  });
  await chmod(path, 0o600);
  return server;
}

function handle(socket: Socket, reposDir: string, branch: string, queue: BuildQueue): void {
  let buffer = '';
  const write = (line: string) => {
    if (!socket.destroyed) socket.write(`${line}\n`);
  };
  socket.on('error', () => undefined);
  socket.on('data', (chunk) => {
    buffer += String(chunk);
    const end = buffer.indexOf('\n');
    if (end === -1) return;
    socket.removeAllListeners('data');
    let request: HookRequest;
    let app: string;
    try {
      request = JSON.parse(buffer.slice(0, end)) as HookRequest;
      const repo = resolve(request.repo);
      if (dirname(repo) !== resolve(reposDir)) throw new Error(`${repo} is not under ${reposDir}`);
      app = repoNameFrom(basename(repo));
    } catch (error) {
      write(`!     system error: bad hook request (${(error as Error).message})`);
      socket.end();
      return;
    }
    const plan = planPush(request, branch);
    for (const note of plan.notes) write(note);
    if (!plan.build) {
      socket.end();
      return;
    }
    queue.request(
      { app, ...plan.build, requestedBy: request.pusher },
      { line: write, done: () => socket.end() },
    );
  });
}
