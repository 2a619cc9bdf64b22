/**
 * Git over smart HTTP: the allowlisted git routes, a user + token login on
 * every request (http/auth.ts), then `git http-backend` through the one git
 * service runner. Everything else is 404; a wrong or missing login is 401
 * with no hint whether the repo exists, and a repo the caller may not read is
 * 404 exactly like one that does not exist.
 *
 * What a client may hold is bounded: a request body that stalls or trickles
 * (http/body.ts), git processes per user (server.git_per_user).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AccessError, openRepo } from '../core/access.ts';
import { RepoError, repoNameFrom } from '../git/repos.ts';
import { type GitService, GIT_SERVICES, runHttpBackend } from '../git/service.ts';
import { authenticate } from '../http/auth.ts';
import { BODY_MIN_BYTES, watchBody } from '../http/body.ts';
import type { TransportOptions } from './options.ts';

export interface GitRoute {
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
export function routeOf(method: string, url: URL): GitRoute | null {
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

function reply(response: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  response.end(`${message}\n`);
}

/** An unexpected failure of a git request: a 500 while nothing was sent, else the response cut. */
export function failGit(response: ServerResponse): void {
  if (!response.headersSent) reply(response, 500, 'upaas: system error');
  else response.destroy();
}

/** Serves one git request. */
export async function handleGit(request: IncomingMessage, response: ServerResponse, url: URL, options: TransportOptions): Promise<void> {
  const { services } = options;
  const address = request.socket.remoteAddress ?? 'unknown';
  const route = routeOf(request.method ?? 'GET', url);
  // Authenticate before anything else, on every request.
  const user = await authenticate(request, {
    users: services.state.users,
    throttle: options.throttle,
    failure: 'http: wrong user name or token',
    refuse: () => reply(response, 401, 'upaas: authentication required (user name and token)', { 'WWW-Authenticate': 'Basic realm="upaas"' }),
  });
  if (!user) return;
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
