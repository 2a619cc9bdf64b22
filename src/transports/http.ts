/**
 * The HTTP transport: smart HTTP only, Basic auth (user + token) on every
 * request, the allowlisted git routes, then `git http-backend` through the one
 * git service runner. Everything else is 404; a wrong or missing login is 401
 * with no hint whether the repo exists.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Services } from '../commands/command.ts';
import type { TransportOptions } from './options.ts';
import { RepoError, repoNameFrom, repoPath } from '../git/repos.ts';
import { type GitService, GIT_SERVICES, runHttpBackend } from '../git/service.ts';
import { type User, allows } from '../state/users.ts';

type HttpOptions = TransportOptions;

/** GET /APP.git/info/refs?service=S, POST /APP.git/S: the only routes. */
export function routeOf(method: string, url: URL): { app: string; service: GitService; pathInfo: string } | null {
  const match = /^\/([^/]+)\/(info\/refs|git-upload-pack|git-receive-pack)$/.exec(url.pathname);
  if (!match) return null;
  const [, repoPart = '', tail = ''] = match;
  let app: string;
  try {
    app = repoNameFrom(repoPart);
  } catch {
    return null;
  }
  let service: string;
  if (tail === 'info/refs') {
    if (method !== 'GET') return null;
    service = url.searchParams.get('service') ?? '';
  } else {
    if (method !== 'POST') return null;
    service = tail;
  }
  if (service !== 'git-upload-pack' && service !== 'git-receive-pack') return null;
  return { app, service, pathInfo: `/${app}.git/${tail}` };
}

function authenticate(request: IncomingMessage, services: Services): User | null {
  const header = request.headers.authorization ?? '';
  const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
  if (!match) return null;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return null;
  return services.state.users.authenticateToken(decoded.slice(0, colon), decoded.slice(colon + 1));
}

function reply(response: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  response.end(`${message}\n`);
}

export async function startHttp(options: HttpOptions): Promise<Server> {
  const { log } = options;
  const server = createServer((request, response) => {
    handle(request, response, options).catch((error: unknown) => {
      log(`http: ${(error as Error).stack ?? String(error)}`);
      if (!response.headersSent) reply(response, 500, 'upaas: system error');
      else response.destroy();
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return server;
}

async function handle(request: IncomingMessage, response: ServerResponse, options: HttpOptions): Promise<void> {
  const { services } = options;
  const url = new URL(request.url ?? '/', 'http://upaas.invalid');
  const route = routeOf(request.method ?? 'GET', url);
  // Authenticate before anything else, on every request.
  const user = authenticate(request, services);
  if (!user) {
    request.resume();
    reply(response, 401, 'upaas: authentication required (user name and token)', { 'WWW-Authenticate': 'Basic realm="upaas"' });
    return;
  }
  if (!route) {
    request.resume();
    reply(response, 404, 'upaas: not found (only git smart HTTP is served here)');
    return;
  }
  const needs = GIT_SERVICES[route.service];
  let path: string;
  try {
    if (!allows(services.state.users.accessTo(user, route.app), needs)) throw new RepoError(`repository ${route.app} does not exist or you have no ${needs} access to it`);
    path = repoPath(services.config.paths.repos, route.app);
  } catch (error) {
    if (!(error instanceof RepoError)) throw error;
    request.resume();
    reply(response, 403, `upaas: ${error.message}`);
    return;
  }
  const controller = new AbortController();
  response.on('close', () => {
    if (!response.writableFinished) controller.abort();
  });
  const protocol = request.headers['git-protocol'];
  const cgi = await runHttpBackend(
    services.config.paths.repos,
    path,
    {
      method: request.method ?? 'GET',
      pathInfo: route.pathInfo,
      query: url.search.slice(1),
      contentType: request.headers['content-type'] ?? '',
      contentEncoding: request.headers['content-encoding'],
      remoteUser: user.name,
      body: request,
    },
    { app: route.app, pusher: user.name, hooks: options.hooks, protocol: typeof protocol === 'string' ? protocol : undefined },
    controller.signal,
  );
  response.writeHead(cgi.status, Object.fromEntries(cgi.headers));
  cgi.body.pipe(response);
  await cgi.done;
}
