/**
 * Who sends an HTTP request, for git and the API alike: the same users and
 * tokens, as `Authorization: Bearer TOKEN` (a token names its user) or
 * `Basic` user + token. A wrong login goes through the per-address throttle
 * (core/login-throttle.ts) before its refusal is answered; no login at all is how every
 * git client starts, and is refused at once.
 */
import type { IncomingMessage } from 'node:http';
import type { User, Users } from '../state/users.ts';
import { type LoginThrottle, MAX_QUEUE_MS, wait } from '../core/login-throttle.ts';

/** The user of the request's login, null for a wrong one, undefined when the request brings none. */
export function loginOf(header: string | undefined, users: Users): User | null | undefined {
  if (header === undefined) return undefined;
  const match = /^(Basic|Bearer) +([A-Za-z0-9+/=._~-]+) *$/i.exec(header);
  if (!match) return null;
  const [, scheme = '', credentials = ''] = match;
  if (scheme.toLowerCase() === 'bearer') return users.authenticateBearer(credentials);
  const decoded = Buffer.from(credentials, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return null;
  return users.authenticateToken(decoded.slice(0, colon), decoded.slice(colon + 1));
}

export interface Authentication {
  users: Users;
  throttle: LoginThrottle;
  /** What failed, for the throttle's log line, e.g. "http: wrong user name or token". */
  failure: string;
  /** Answers the request's refusal (a 401 in the front end's own form). */
  refuse: () => void;
}

/**
 * The request's user; null once its refusal has been answered: at once for
 * no login, after the throttle's wait for a wrong one, or not at all (the
 * connection dropped) when so many wrong logins from its address wait already.
 */
export async function authenticate(request: IncomingMessage, how: Authentication): Promise<User | null> {
  const user = loginOf(request.headers.authorization, how.users);
  if (user) return user;
  request.resume();
  if (user === null) {
    const address = request.socket.remoteAddress ?? 'unknown';
    const delay = how.throttle.failed(address, how.failure);
    if (delay > MAX_QUEUE_MS) {
      request.socket.destroy();
      return null;
    }
    await wait(delay);
  }
  how.refuse();
  return null;
}
