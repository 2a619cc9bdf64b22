/**
 * The API's route table: each path under /api/v1/ (fixed words and :params)
 * with its endpoint per method. A GET endpoint answers HEAD too. A path that
 * is no route is null (404); a route without the method says which it has (405).
 */
import { listAppBuilds, listAppPackages, listAppReleases, listApps, showApp } from './routes/apps.ts';
import { downloadArchive } from './routes/archive.ts';
import { startBuild } from './routes/build.ts';
import { buildLog } from './routes/log.ts';
import { rollBackApp } from './routes/rollback.ts';
import type { Endpoint } from './route.ts';

type Method = 'GET' | 'POST';

interface Route {
  path: string[];
  methods: Partial<Record<Method, Endpoint>>;
}

const route = (path: string, methods: Route['methods']): Route => ({ path: path.split('/'), methods });

const ROUTES: readonly Route[] = [
  route('apps', { GET: listApps }),
  route('apps/:app', { GET: showApp }),
  route('apps/:app/packages', { GET: listAppPackages }),
  route('apps/:app/packages/:package/archive', { GET: downloadArchive }),
  route('apps/:app/releases', { GET: listAppReleases }),
  route('apps/:app/builds', { GET: listAppBuilds, POST: startBuild }),
  route('apps/:app/builds/:build/log', { GET: buildLog }),
  route('apps/:app/rollback', { POST: rollBackApp }),
];

export type RouteMatch = { endpoint: Endpoint; params: Record<string, string> } | { allowed: string[] };

/** The params of `route` in `parts` (percent-decoded), or null when the path is not this route's. */
function paramsOf(route: Route, parts: string[]): Record<string, string> | null {
  if (parts.length !== route.path.length) return null;
  const params: Record<string, string> = {};
  for (const [i, word] of route.path.entries()) {
    const part = parts[i] as string;
    if (word.startsWith(':')) {
      let value: string;
      try {
        value = decodeURIComponent(part);
      } catch {
        return null;
      }
      if (value === '') return null;
      params[word.slice(1)] = value;
    } else if (part !== word) {
      return null;
    }
  }
  return params;
}

/** The endpoint for `method` on `path` (what follows /api/v1/); null when no route has that path. */
export function matchRoute(method: string, path: string): RouteMatch | null {
  const parts = path.split('/');
  for (const candidate of ROUTES) {
    const params = paramsOf(candidate, parts);
    if (!params) continue;
    const wanted: Method | null = method === 'GET' || method === 'HEAD' ? 'GET' : method === 'POST' ? 'POST' : null;
    const endpoint = wanted && candidate.methods[wanted];
    if (endpoint) return { endpoint, params };
    const allowed = Object.keys(candidate.methods).flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m]));
    return { allowed };
  }
  return null;
}
