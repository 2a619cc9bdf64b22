// @ts-check
/**
 * `upaas hook post-receive`: what the post-receive shim runs. It hands the ref
 * updates and push options to the running server over its local socket and
 * relays the build output line by line (git shows it as "remote: ...").
 *
 * Plain JavaScript (type-checked through JSDoc) on purpose: it runs on every
 * push, and loading TypeScript through tsx would triple the time to the first
 * line the pusher sees. It imports nothing but Node's own modules.
 */
import { connect } from 'node:net';
import { resolve } from 'node:path';

/**
 * @typedef {{ old: string, new: string, ref: string }} RefUpdate
 * @typedef {{ repo: string, updates: RefUpdate[], options: string[], pusher: string }} HookRequest
 */

/**
 * The push options git hands to hooks (GIT_PUSH_OPTION_COUNT, GIT_PUSH_OPTION_N).
 * @param {NodeJS.ProcessEnv} env
 * @returns {string[]}
 */
export function readPushOptions(env) {
  const count = Number(env.GIT_PUSH_OPTION_COUNT ?? 0);
  const options = [];
  for (let i = 0; i < count; i++) options.push(env[`GIT_PUSH_OPTION_${i}`] ?? '');
  return options;
}

/** @returns {Promise<number>} the hook's exit code (always 0: the push is stored either way) */
export async function postReceive() {
  const socket = process.env.UPAAS_HOOK_SOCKET;
  if (!socket) {
    process.stdout.write('-----> upaas: this push did not come through the upaas server; nothing is built\n');
    return 0;
  }
  let input = '';
  for await (const chunk of process.stdin) input += String(chunk);
  /** @type {RefUpdate[]} */
  const updates = input
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [old = '', next = '', ref = ''] = line.split(' ');
      return { old, new: next, ref };
    });
  /** @type {HookRequest} */
  const request = {
    repo: resolve(process.env.GIT_DIR ?? '.'),
    updates,
    options: readPushOptions(process.env),
    pusher: process.env.UPAAS_PUSHER ?? 'unknown',
  };
  return new Promise((done) => {
    const connection = connect(socket);
    connection.on('connect', () => connection.write(`${JSON.stringify(request)}\n`));
    connection.on('data', (chunk) => process.stdout.write(chunk));
    connection.on('error', (error) => {
      process.stdout.write(`!     system error: cannot reach the upaas server (${error.message}); the push is stored, run "build" to build it\n`);
      done(0);
    });
    connection.on('close', () => done(0));
  });
}
