/**
 * `upaas hook post-receive`: what the post-receive shim runs. It hands the ref
 * updates and push options to the running server over its local socket and
 * relays the build output line by line (git shows it as "remote: ...").
 * Kept free of heavy imports: it runs on every push.
 */
import { connect } from 'node:net';
import { resolve } from 'node:path';

export interface HookRequest {
  repo: string;
  updates: { old: string; new: string; ref: string }[];
  options: string[];
  pusher: string;
}

export function readPushOptions(env: NodeJS.ProcessEnv): string[] {
  const count = Number(env.GIT_PUSH_OPTION_COUNT ?? 0);
  const options: string[] = [];
  for (let i = 0; i < count; i++) options.push(env[`GIT_PUSH_OPTION_${i}`] ?? '');
  return options;
}

export async function postReceive(): Promise<number> {
  const socket = process.env.UPAAS_HOOK_SOCKET;
  if (!socket) {
    process.stdout.write('-----> upaas: this push did not come through the upaas server; nothing is built\n');
    return 0;
  }
  let input = '';
  for await (const chunk of process.stdin) input += String(chunk);
  const updates = input
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [old = '', next = '', ref = ''] = line.split(' ');
      return { old, new: next, ref };
    });
  const request: HookRequest = {
    repo: resolve(process.env.GIT_DIR ?? '.'),
    updates,
    options: readPushOptions(process.env),
    pusher: process.env.UPAAS_PUSHER ?? 'unknown',
  };
  return new Promise<number>((resolve) => {
    const connection = connect(socket);
    connection.on('connect', () => connection.write(`${JSON.stringify(request)}\n`));
    connection.on('data', (chunk) => process.stdout.write(chunk));
    connection.on('error', (error) => {
      process.stdout.write(`!     system error: cannot reach the upaas server (${error.message}); the push is stored, run "build" to build it\n`);
      resolve(0);
    });
    connection.on('close', () => resolve(0));
  });
}
