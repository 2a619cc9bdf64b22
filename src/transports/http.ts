/**
 * The HTTP transport: smart HTTP only, Basic auth (user + token) on every
 * request, the allowlisted git routes, then `git http-backend` through the one
 * git service runner. Everything else is 404; a wrong or missing login is 401
 * with no hint whether the repo exists, and a repo the caller may not read is
 * 404 exactly like one that does not exist.
 *
 * What a client may hold is bounded: the time to send its headers and its
 * whole request (server.http.headers_timeout, request_timeout), a request body
 * that stalls or trickles (less than BODY_MIN_BYTES in server.http.body_timeout
 * seconds), git processes per user (server.git_per_user). Wrong logins are
 * answered later and later per source address (throttle.ts).
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type Readable, Transform } from 'node:stream';
import { AccessError, openRepo } from '../core/access.ts';
import { RepoError, repoNameFrom } from '../git/repos.ts';
import { type GitService, GIT_SERVICES, runHttpBackend } from '../git/service.ts';
import type { User } from '../state/users.ts';
import type { TransportOptions } from './options.ts';
import { MAX_QUEUE_MS, wait } from './throttle.ts';

/** A request body must bring at least this much in each server.http.body_timeout window. */
export const BODY_MIN_BYTES = 1024;

export interface Route {
  app: string;
  service: GitService;
  pathInfo: string;
  /** The query `git http-backend` gets: built from the checked service, never the client's text. */
  query: string;
}

/**
 * GET /APP.git/info/refs?service=S, POST /APP.git/S: the only routes. The
 * service of info/refs must be named exactly once (http-backend would take a
 * repeated one differently from the check here); a POST names it in its path
 * and nowhere else.
 */
export function routeOf(method: string, url: URL): Route | null {
  const match = /^\/([^/]+)\/(info\/refs|git-upload-pack|git-receive-pack)$/.exec(url.pathname);
  if (!match) return null;
  const [, repoPart = '', tail = ''] = match;
  let app: string;
  try {
    app = repoNameFrom(repoPart);
  } catch {
    return null;
  }
  const named = url.searchParams.getAll('service');
  let service: string;
  if (tail === 'info/refs') {
    if (method !== 'GET' || named.length !== 1) return null;
    service = named[0] as string;
  } else {
    if (method !== 'POST' || named.length !== 0) return null;
    service = tail;
  }
  if (service !== 'git-upload-pack' && service !== 'git-receive-pack') return null;
  return { app, service, pathInfo: `/${app}.git/${tail}`, query: tail === 'info/refs' ? `service=${service}` : '' };
}

/** The user of a Basic login, null for a wrong one, undefined when the request brings none. */
function authenticate(request: IncomingMessage, options: TransportOptions): User | null | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
  if (!match) return null;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return null;
  return options.services.state.users.authenticateToken(decoded.slice(0, colon), decoded.slice(colon + 1));
}

function reply(response: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  response.end(`${message}\n`);
}

export async function startHttp(options: TransportOptions): Promise<Server> {
  const { log } = options;
  const limits = options.services.config.server.http;
  // Timeouts are checked this often (Node's default, 30 s, would let a slow client hold 30 s past them).
  const server = createServer({ connectionsCheckingInterval: 1000 }, (request, response) => {
    handle(request, response, options).catch((error: unknown) => {
      log(`http: ${(error as Error).stack ?? String(error)}`);
      if (!response.headersSent) reply(response, 500, 'upaas: system error');
      else response.destroy();
    });
  });
  server.headersTimeout = Math.min(limits.headers_timeout, limits.request_timeout) * 1000;
  server.requestTimeout = limits.request_timeout * 1000;
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return server;
}

/**
 * The request body through a meter: `stalled` is called when it brings less
 * than BODY_MIN_BYTES in `seconds`, until it ends. `stop` ends the watch.
 */
function watchBody(request: IncomingMessage, seconds: number, stalled: () => void): { body: Readable; stop: () => void } {
  let bytes = 0;
  const body = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  request.pipe(body);
  const timer = setInterval(() => {
    if (request.complete) return stop();
    if (bytes < BODY_MIN_BYTES) {
      stop();
      stalled();
    }
    bytes = 0;
  }, seconds * 1000);
  const stop = () => clearInterval(timer);
  request.once('end', stop);
  request.once('close', stop);
  return { body, stop };
}

async function handle(request: IncomingMessage, response: ServerResponse, options: TransportOptions): Promise<void> {
  const { services, throttle } = options;
  const address = request.socket.remoteAddress ?? 'unknown';
  const url = new URL(request.url ?? '/', 'http://upaas.invalid');
  const route = routeOf(request.method ?? 'GET', url);
  // Authenticate before anything else, on every request.
  const user = authenticate(request, options);
  if (!user) {
    request.resume();
    // No login at all is how every git client starts; a wrong one is a failed login.
    if (user === null) {
      const delay = throttle.failed(address, 'http: wrong user name or token');
      // So many wrong logins wait already that this one is not answered at all.
      if (delay > MAX_QUEUE_MS) return void request.socket.destroy();
      await wait(delay);
    }
    reply(response, 401, 'upaas: authentication required (user name and token)', { 'WWW-Authenticate': 'Basic realm="upaas"' });
    return;
  }
  if (!route) {
    request.resume();
    reply(response, 404, 'upaas: not found (only git smart HTTP is served here)');
    return;
  }
  let repo;
  try {
    repo = openRepo(services, user, route.app, GIT_SERVICES[route.service]);
  } catch (error) {
    if (!(error instanceof AccessError || error instanceof RepoError)) throw error;
    request.resume();
    reply(response, error instanceof AccessError ? error.status : 404, `upaas: ${error.message}`);
    return;
  }
  const release = options.gitSlots.take(user.name);
  if (!release) {
    request.resume();
    reply(response, 429, `upaas: you have ${services.config.server.git_per_user} git operations running (server.git_per_user); try again when one ends`, {
      'Retry-After': '5',
    });
    return;
  }
  try {
    const controller = new AbortController();
    response.on('close', () => {
      if (!response.writableFinished) controller.abort();
    });
    const watched = watchBody(request, services.config.server.http.body_timeout, () => {
      options.log(`http: cut a request from ${address}: its body brought less than ${BODY_MIN_BYTES} bytes in ${services.config.server.http.body_timeout}s`);
      controller.abort();
      request.socket.destroy();
    });
    const protocol = request.headers['git-protocol'];
    const started = runHttpBackend(
      services.config.paths.repos,
      repo.path,
      {
        method: request.method ?? 'GET',
        pathInfo: route.pathInfo,
        query: route.query,
        contentType: request.headers['content-type'] ?? '',
        contentEncoding: request.headers['content-encoding'],
        remoteUser: user.name,
        body: watched.body,
      },
      { app: repo.name, pusher: user.name, hooks: options.hooks, protocol: typeof protocol === 'string' ? protocol : undefined },
      controller.signal,
    );
    // Cut off (a stalled body, a client gone) before git said anything: nobody is left to answer.
    const cgi = await started.catch((error: unknown) => {
      if (controller.signal.aborted) return null;
      throw error;
    });
    if (!cgi) return watched.stop();
    response.writeHead(cgi.status, Object.fromEntries(cgi.headers));
    cgi.body.pipe(response);
    await cgi.done.finally(watched.stop);
  } finally {
    release();
  }
}
