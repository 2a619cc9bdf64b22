/**
 * The HTTP server: one port, two front ends. `/api/v1/...` goes to the API
 * (api/api.ts), everything else to git over smart HTTP (http-git.ts); each
 * authenticates every request itself (http/auth.ts).
 *
 * What a client may hold is bounded server-wide: the time to send its
 * headers and its whole request (server.http.headers_timeout,
 * request_timeout); the front ends bound bodies and long responses.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { failApi, handleApi, isApiPath } from '../api/api.ts';
import { failGit, handleGit } from './http-git.ts';
import type { TransportOptions } from './options.ts';

function handle(request: IncomingMessage, response: ServerResponse, options: TransportOptions): void {
  const url = new URL(request.url ?? '/', 'http://upaas.invalid');
  const api = isApiPath(url.pathname);
  let served: Promise<void>;
  if (api) {
    // Past the server's grace, an answer still going out (a slow download) is cut.
    const cut = () => response.destroy();
    options.inFlight.signal.addEventListener('abort', cut, { once: true });
    response.once('close', () => options.inFlight.signal.removeEventListener('abort', cut));
    served = options.inFlight.track(() => handleApi(request, response, url, options));
  } else served = handleGit(request, response, url, options);
  served.catch((error: unknown) => {
    options.log(`http: ${(error as Error).stack ?? String(error)}`);
    (api ? failApi : failGit)(response);
  });
}

export async function startHttp(options: TransportOptions): Promise<Server> {
  const limits = options.services.config.server.http;
  // Timeouts are checked this often (Node's default, 30 s, would let a slow client hold 30 s past them).
  const server = createServer({ connectionsCheckingInterval: 1000 }, (request, response) => handle(request, response, options));
  server.headersTimeout = Math.min(limits.headers_timeout, limits.request_timeout) * 1000;
  server.requestTimeout = limits.request_timeout * 1000;
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return server;
}
