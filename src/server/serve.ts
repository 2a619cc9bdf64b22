/**
 * `upaas serve`: the long-running server. Wires the state, the webhooks, the
 * build queue, the hook sessions, the receive-pack starter and the transports,
 * makes sure the config's admins exist, and on SIGTERM/SIGINT stops taking
 * work, lets running builds finish within builder.grace seconds, records the
 * webhook deliveries still under way as failed, and exits.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sweepInterrupted } from '../builder/sweep.ts';
import type { Config } from '../config/config.ts';
import { runBuild } from '../core/builds.ts';
import { GitGc } from '../core/git-gc.ts';
import { GitSlots } from '../core/git-slots.ts';
import { sweepDeletions } from '../core/repos.ts';
import { collectTrees } from '../core/retention.ts';
import { BuildQueue } from '../core/queue.ts';
import type { Services } from '../core/services.ts';
import { Webhooks } from '../core/webhooks.ts';
import { InFlight } from './in-flight.ts';
import { lockDownRepos } from '../git/repos.ts';
import { ReceivePackStarter } from '../git/service.ts';
import type { State } from '../state/state.ts';
import { parsePublicKey } from '../users/public-key.ts';
import { startHttp } from '../transports/http.ts';
import { startSsh } from '../transports/ssh.ts';
import { LoginThrottle } from '../core/login-throttle.ts';
import { HookSessionFactory } from './hook-session.ts';

export interface RunningServer {
  sshPort: number;
  httpPort: number;
  queue: BuildQueue;
  stop: () => Promise<void>;
}

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

/** Adds the admins named in upaas.yml (and their keys) when they are missing. */
export function ensureAdmins(config: Config, state: State): void {
  for (const admin of config.admins) {
    const key = parsePublicKey(admin.key);
    const existing = state.users.get(admin.name);
    if (!existing) state.users.add(admin.name, true);
    else if (!existing.admin) state.users.setAdmin(admin.name, true);
    if (!state.users.keyByFingerprint(key.fingerprint)) state.users.addKey(admin.name, key);
  }
}

export async function startServer(base: Services): Promise<RunningServer> {
  const { config, state, storage } = base;
  ensureAdmins(config, state);
  await lockDownRepos(config.paths.repos);
  await sweepInterrupted(config, state, log, true);
  await sweepDeletions(base, log);
  for (const path of await storage.sweep()) log(`upaas: removed ${path}, left half-written by a storage write that was interrupted`);
  // Layers no longer kept (of a package an interrupted build never made current, or beyond a lowered builder.cache
  // bound) go now, not after the next build or rollback.
  try {
    const dropped = await collectTrees(base);
    if (dropped.length > 0) log(`upaas: the tree cache dropped ${dropped.length} layers it no longer keeps`);
  } catch (error) {
    log(`upaas: could not collect the tree cache: ${(error as Error).message}`);
  }
  const webhooks = new Webhooks(base);
  const stale = webhooks.failStale();
  if (stale > 0) log(`upaas: ${stale} webhook deliveries left pending by a process that ended are marked failed`);
  const withEvents: Services = { ...base, events: webhooks };
  const queue = new BuildQueue((request) => runBuild(withEvents, request), config.builder.workers);
  const gitSlots = new GitSlots(config.server.git_per_user);
  const services: Services = { ...withEvents, queue, gitSlots };
  const hookDir = join(config.paths.state, 'hooks');
  await rm(hookDir, { recursive: true, force: true });
  await mkdir(hookDir, { recursive: true, mode: 0o700 });
  const gc = new GitGc(log);
  const hooks = new HookSessionFactory(hookDir, config, queue, gc);
  hooks.prepare();
  const receivePacks = new ReceivePackStarter();
  receivePacks.prepare();
  const inFlight = new InFlight();
  const transport = {
    services,
    host: config.server.host,
    hooks,
    receivePacks,
    throttle: new LoginThrottle(log),
    gitSlots,
    inFlight,
    log,
  };
  const ssh = await startSsh({ ...transport, port: config.server.ssh.port });
  const http = await startHttp({ ...transport, port: config.server.http.port });
  const address = http.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.server.http.port;
  log(`upaas: git over HTTP on ${config.server.host}:${httpPort}`);
  log(`upaas: git and admin commands over SSH on ${config.server.host}:${ssh.port}`);
  if (state.users.list().length === 0) {
    log('upaas: no users yet: add the first admin with "npx upaas users add NAME --admin < key.pub" (or admins: in upaas.yml)');
  }
  let stopping: Promise<void> | null = null;
  return {
    sshPort: ssh.port,
    httpPort,
    queue,
    stop: () => {
      stopping ??= (async () => {
        log(`upaas: stopping; running builds and commands get ${config.builder.grace}s to finish`);
        ssh.close();
        http.close();
        http.closeIdleConnections();
        receivePacks.close();
        await Promise.all([queue.stop(config.builder.grace), inFlight.stop(config.builder.grace)]);
        await webhooks.stop();
        await gc.stop();
        await hooks.close();
      })();
      return stopping;
    },
  };
}
