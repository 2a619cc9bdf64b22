/**
 * The HTTP API front end (`/api/v1/...` on the HTTP port): for each request,
 * the login (http/auth.ts: the same users, tokens and throttle as
 * git over HTTP), the route (router.ts: 404, 405), the access the endpoint
 * declares on the route's app (core/access.ts openRepo: an app the caller
 * may not read is 404 word for word like one that does not exist; a reader
 * asking to write is 403), the JSON body it declares (json.ts, input.ts),
 * then the endpoint; every error is answered here, as errors.ts says.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Repo, openRepo } from '../core/access.ts';
import { serverLog } from '../process/server-log.ts';
import { authenticate } from '../http/auth.ts';
import type { TransportOptions } from '../transports/options.ts';
import { ApiError, answerFor, clientGone } from './errors.ts';
import { checkBody } from './input.ts';
import { readJsonBody, sendError, sendJson } from './json.ts';
import { API_PATH } from './paths.ts';
import { matchRoute } from './router.ts';
import type { Access, BodySpec, Call } from './route.ts';

type ApiOptions = Pick<TransportOptions, 'services' | 'throttle' | 'inFlight'>;

/** Whether the API serves `pathname` (everything else on the port is git's). */
export const isApiPath = (pathname: string): boolean => pathname === API_PATH || pathname.startsWith(`${API_PATH}/`);

/** Whether a Content-Type header says JSON (parameters such as charset allowed). */
const isJson = (type: string | undefined): boolean => /^application\/json\s*(;.*)?$/i.test(type ?? '');

const LOGIN_REFUSED = 'authentication required: send a token as "Authorization: Bearer TOKEN", or Basic with your user name and token';

/** Serves one API request. */
export async function handleApi(request: IncomingMessage, response: ServerResponse, url: URL, options: ApiOptions): Promise<void> {
  const { services } = options;
  const user = await authenticate(request, {
    users: services.state.users,
    throttle: options.throttle,
    failure: 'api: wrong token or user name',
    // Basic is taken (curl -u) but not asked for: a browser would prompt for it and then send it with every
    // request to this host, those a page elsewhere makes included.
    refuse: () => sendError(response, 401, LOGIN_REFUSED, { 'WWW-Authenticate': 'Bearer realm="upaas"' }),
  });
  if (!user) return;
  try {
    const method = request.method ?? 'GET';
    const match = matchRoute(method, url.pathname.slice(API_PATH.length + 1));
    if (!match) throw new ApiError(404, `no API route at ${url.pathname}`);
    if ('allowed' in match) throw new ApiError(405, `${method} is not allowed on ${url.pathname}; it takes ${match.allowed.join(', ')}`, { Allow: match.allowed.join(', ') });
    const { endpoint, params } = match;
    const repo: Repo | null = endpoint.access === 'user' ? null : openRepo(services, user, params.app ?? '', endpoint.access);
    let body: Call<Access, BodySpec>['body'] = {};
    if (endpoint.body) {
      // Only JSON, said so: a browser sends that cross-site only after asking (CORS), so a page
      // elsewhere cannot make a logged-in browser start builds or rollbacks with a form.
      if (!isJson(request.headers['content-type'])) {
        throw new ApiError(415, `${method} ${url.pathname} takes a JSON body: send it with "Content-Type: application/json"`);
      }
      body = checkBody(await readJsonBody(request, services.config.server.http.body_timeout), endpoint.body);
    }
    else request.resume();
    const reply = await endpoint.run({ services, user, repo, params, body, request, response, stopping: options.inFlight.signal });
    if (reply !== 'answered') sendJson(response, reply.status, reply.body, reply.headers);
  } catch (error) {
    answerError(request, response, error);
  }
}

/** The one place an error becomes an answer: its status and line (errors.ts), or 500 "system error" with the detail in the server log. */
function answerError(request: IncomingMessage, response: ServerResponse, error: unknown): void {
  // Whatever was not read of the request is not waited for.
  request.resume();
  const answer = answerFor(error);
  if (answer?.detail !== undefined) serverLog(`api: ${request.method} ${request.url}: ${answer.detail}`);
  if (response.headersSent || request.socket.destroyed) {
    // Mid-answer, or nobody left to answer (a body that stalled, a client gone).
    if (!answer && !clientGone(error)) serverLog(`api: ${request.method} ${request.url}: ${(error as Error).stack ?? String(error)}`);
    response.destroy();
    return;
  }
  if (!answer) {
    serverLog(`api: ${request.method} ${request.url}: ${(error as Error).stack ?? String(error)}`);
    sendError(response, 500, 'system error');
    return;
  }
  sendError(response, answer.status, answer.message, answer.headers);
}

/** An unexpected failure outside the API's own answers: a 500 while nothing was sent, else the response cut. */
export function failApi(response: ServerResponse): void {
  if (!response.headersSent) sendError(response, 500, 'system error');
  else response.destroy();
}
