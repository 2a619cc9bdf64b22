/**
 * The one git service runner: both transports hand an authenticated,
 * authorised request for a resolved repo to these functions. Argument arrays
 * only; for receive-pack, the environment names the push's hook session.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { type ResultPromise, execa } from 'execa';
import { installHooks } from './repos.ts';

export type GitService = 'git-upload-pack' | 'git-receive-pack' | 'git-upload-archive';

/** The allowlist of git services and the access each needs. */
export const GIT_SERVICES: Record<GitService, 'read' | 'write'> = {
  'git-upload-pack': 'read',
  'git-upload-archive': 'read',
  'git-receive-pack': 'write',
};

export const isGitService = (name: string): name is GitService => Object.hasOwn(GIT_SERVICES, name);

/** A push's private line to the post-receive shim (see server/hook-session.ts). */
export interface HookSession {
  /** Handed to the shim as UPAAS_HOOK_DIR. */
  dir: string;
  /** Called as receive-pack's output passes through: the shim's lines are on their way. */
  relayed: () => void;
  close: () => Promise<void>;
}

export interface HookSessions {
  open(app: string, pusher: string): Promise<HookSession>;
}

export interface ServiceContext {
  /** The repo's app name and who is pushing or fetching. */
  app: string;
  pusher: string;
  /** Opens the line to the post-receive shim for each receive-pack. */
  hooks: HookSessions;
  /** Starts receive-pack over SSH (from a process started ahead). */
  receivePacks: ReceivePackStarter;
  /** The client's GIT_PROTOCOL (e.g. "version=2"), passed on when well-formed. */
  protocol?: string;
}

const BASE_ENV: Record<string, string> = { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };

/**
 * receive-pack's settings. Its connectivity check also lists the refs of each
 * "alternate" object store, which with its quarantine is the repo itself: a
 * second git start per push for refs `--all` already gave. `true` lists none.
 * And no `git gc --auto` of its own: receive-pack runs it before it exits, so
 * the pusher would wait for it; the server runs it after the push instead
 * (core/git-gc.ts).
 */
const RECEIVE_ENV: Record<string, string> = {
  ...BASE_ENV,
  GIT_CONFIG_COUNT: '2',
  GIT_CONFIG_KEY_0: 'core.alternateRefsCommand',
  GIT_CONFIG_VALUE_0: 'true',
  GIT_CONFIG_KEY_1: 'receive.autogc',
  GIT_CONFIG_VALUE_1: 'false',
};

/** The client's GIT_PROTOCOL when it is well-formed, else nothing. */
const checkedProtocol = (protocol: string | undefined): string | undefined =>
  protocol && /^[a-z0-9=:.,-]+$/i.test(protocol) ? protocol : undefined;

/** What `git http-backend` needs of the context: it starts receive-pack itself. */
export type HttpServiceContext = Omit<ServiceContext, 'receivePacks'>;

function serviceEnv(context: { protocol?: string }, session: HookSession | null): Record<string, string> {
  const env: Record<string, string> = session ? { ...RECEIVE_ENV, UPAAS_HOOK_DIR: session.dir } : { ...BASE_ENV };
  const protocol = checkedProtocol(context.protocol);
  if (protocol) env.GIT_PROTOCOL = protocol;
  return env;
}

/** `git ARGS` with its stdin, stdout and stderr piped to this process. */
const startGit = (args: string[], env: Record<string, string>, signal?: AbortSignal) =>
  execa('git', args, { env, stdin: 'pipe', buffer: false, reject: false, cancelSignal: signal });

/** A started process that has not ended (as far as this process has heard). */
const running = (child: { exitCode: number | null; signalCode: string | null }) => child.exitCode === null && child.signalCode === null;

/**
 * Starts receive-pack from a process started ahead. Starting a process stalls
 * this server's event loop for about 10 ms (fork copies the page tables of a
 * big process), and every push over SSH waited for it. So a spare `sh` waits
 * for its orders, started at server start and after each push, never during
 * one; a push hands it three lines (the repo, the hook folder, the protocol)
 * and it execs receive-pack with them. Every value is a server-made path or a
 * checked protocol, and sh takes them as data (`read -r`), never as code.
 */
export class ReceivePackStarter {
  private spare: ResultPromise<{ stdin: 'pipe'; buffer: false; reject: false }> | null = null;
  private closed = false;

  /** Starts the spare unless a live one waits (or the server is stopping). */
  prepare(): void {
    if (this.closed || (this.spare && running(this.spare))) return;
    const script = [
      'IFS= read -r repo && IFS= read -r dir && IFS= read -r protocol || exit 70',
      'export UPAAS_HOOK_DIR="$dir"',
      '[ -z "$protocol" ] || export GIT_PROTOCOL="$protocol"',
      'exec git receive-pack "$repo"',
    ].join('\n');
    const spare = execa('sh', ['-c', script], { env: RECEIVE_ENV, stdin: 'pipe', buffer: false, reject: false });
    spare.catch(() => undefined);
    // A spare that died meanwhile (killed by hand) must not take the server with it.
    spare.stdin.on('error', () => undefined);
    this.spare = spare;
  }

  /** receive-pack on `repo` for `session`: the spare when a live one waits, else a new process. */
  start(repo: string, session: HookSession, context: { protocol?: string }, signal?: AbortSignal) {
    const spare = this.spare;
    this.spare = null;
    const orders = [repo, session.dir, checkedProtocol(context.protocol) ?? ''];
    // (A line break in a path, from a strange paths.repos or paths.state, would shift the lines.)
    if (spare && running(spare) && spare.stdin.writable && !orders.some((line) => line.includes('\n'))) {
      spare.stdin.write(`${orders.join('\n')}\n`);
      const stop = () => spare.kill();
      if (signal?.aborted) stop();
      signal?.addEventListener('abort', stop, { once: true });
      void spare.finally(() => signal?.removeEventListener('abort', stop));
      return spare;
    }
    spare?.kill();
    return startGit(['receive-pack', repo], serviceEnv(context, session), signal);
  }

  /** Ends the spare (the server stops). */
  close(): void {
    this.closed = true;
    this.spare?.kill();
    this.spare = null;
  }
}

/** For receive-pack: the hooks in place and a session for the shim. */
async function prepareReceive(repo: string, context: HttpServiceContext): Promise<HookSession> {
  await installHooks(repo);
  return context.hooks.open(context.app, context.pusher);
}

/** Runs `git <service> <repo>` over the given streams; resolves with its exit code. */
export async function runGitService(
  service: GitService,
  repo: string,
  streams: { stdin: Readable; stdout: Writable; stderr: Writable },
  context: ServiceContext,
  signal?: AbortSignal,
): Promise<number> {
  const session = service === 'git-receive-pack' ? await prepareReceive(repo, context) : null;
  try {
    const child = session
      ? context.receivePacks.start(repo, session, context, signal)
      : startGit([service.slice('git-'.length), repo], serviceEnv(context, null), signal);
    streams.stdin.pipe(child.stdin);
    child.stdin.on('error', () => undefined);
    child.stdout.pipe(streams.stdout, { end: false });
    if (session) child.stdout.on('data', session.relayed);
    child.stderr.pipe(streams.stderr, { end: false });
    const result = await child;
    streams.stdin.unpipe(child.stdin);
    return result.exitCode ?? 128;
  } finally {
    await session?.close();
    // The next push's receive-pack, now that this one is through.
    if (session) context.receivePacks.prepare();
  }
}

export interface CgiRequest {
  method: string;
  /** /APP.git/info/refs or /APP.git/git-upload-pack ... */
  pathInfo: string;
  query: string;
  contentType: string;
  contentEncoding?: string;
  remoteUser: string;
  body: Readable;
}

export interface CgiResponse {
  status: number;
  headers: [string, string][];
  body: Readable;
  done: Promise<number>;
}

/**
 * Runs `git http-backend` (smart HTTP) for one request, after the transport
 * authenticated and authorised it. Resolves once the CGI headers are read.
 */
export async function runHttpBackend(
  reposDir: string,
  repo: string,
  request: CgiRequest,
  context: HttpServiceContext,
  signal?: AbortSignal,
): Promise<CgiResponse> {
  // Only the POST runs receive-pack (and its hook); info/refs just advertises.
  const receives = request.method === 'POST' && request.pathInfo.endsWith('/git-receive-pack');
  const session = receives ? await prepareReceive(repo, context) : null;
  const env: Record<string, string> = {
    ...serviceEnv(context, session),
    GIT_PROJECT_ROOT: reposDir,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: request.pathInfo,
    QUERY_STRING: request.query,
    REQUEST_METHOD: request.method,
    CONTENT_TYPE: request.contentType,
    REMOTE_USER: request.remoteUser,
    REMOTE_ADDR: '127.0.0.1',
  };
  if (request.contentEncoding) env.HTTP_CONTENT_ENCODING = request.contentEncoding;
  const child = execa('git', ['http-backend'], { env, stdin: 'pipe', buffer: false, reject: false, cancelSignal: signal });
  request.body.pipe(child.stdin);
  child.stdin.on('error', () => undefined);
  child.stderr.resume();
  const done = child.then(async (result) => {
    await session?.close();
    return result.exitCode ?? 128;
  });
  if (session) child.stdout.on('data', session.relayed);
  const { headers, rest } = await readCgiHeaders(child.stdout);
  let status = 200;
  const out: [string, string][] = [];
  for (const [name, value] of headers) {
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
    else out.push([name, value]);
  }
  return { status, headers: out, body: rest, done };
}

/** Reads CGI headers up to the blank line; returns them and the rest of the stream. */
async function readCgiHeaders(stream: Readable): Promise<{ headers: [string, string][]; rest: Readable }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const crlf = buffered.indexOf('\r\n\r\n');
      const lf = buffered.indexOf('\n\n');
      const end = crlf !== -1 && (lf === -1 || crlf < lf) ? crlf : lf;
      if (end === -1) return;
      const skip = end === crlf ? 4 : 2;
      stream.off('data', onData);
      stream.off('end', onEnd);
      const headers = buffered
        .subarray(0, end)
        .toString('latin1')
        .split(/\r?\n/)
        .filter(Boolean)
        .map((line): [string, string] => {
          const colon = line.indexOf(':');
          return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
        });
      const rest = new PassThrough();
      rest.write(buffered.subarray(end + skip));
      stream.pipe(rest);
      resolve({ headers, rest });
    };
    const onEnd = () => reject(new Error('git http-backend ended before its headers'));
    stream.on('data', onData);
    stream.on('end', onEnd);
  });
}
