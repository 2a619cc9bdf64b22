/**
 * The one git service runner: both transports hand an authenticated,
 * authorised request for a resolved repo to these functions. Argument arrays
 * only; for receive-pack, the environment names the push's hook session.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { execa } from 'execa';
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
  /** The client's GIT_PROTOCOL (e.g. "version=2"), passed on when well-formed. */
  protocol?: string;
}

function serviceEnv(context: ServiceContext, session: HookSession | null): Record<string, string> {
  const env: Record<string, string> = {
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
  };
  if (session) {
    env.UPAAS_HOOK_DIR = session.dir;
    // receive-pack's connectivity check also lists the refs of each "alternate"
    // object store, which with its quarantine is the repo itself: a second git
    // start per push for refs `--all` already gave. `true` lists none.
    env.GIT_CONFIG_COUNT = '1';
    env.GIT_CONFIG_KEY_0 = 'core.alternateRefsCommand';
    env.GIT_CONFIG_VALUE_0 = 'true';
  }
  if (context.protocol && /^[a-z0-9=:.,-]+$/i.test(context.protocol)) env.GIT_PROTOCOL = context.protocol;
  return env;
}

/** For receive-pack: the hooks in place and a session for the shim. */
async function prepareReceive(repo: string, context: ServiceContext): Promise<HookSession> {
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
    const child = execa('git', [service.slice('git-'.length), repo], {
      env: serviceEnv(context, session),
      stdin: 'pipe',
      buffer: false,
      reject: false,
      cancelSignal: signal,
    });
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
  context: ServiceContext,
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
