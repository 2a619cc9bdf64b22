/**
 * The one git service runner: both transports hand an authenticated,
 * authorised request for a resolved repo to these functions. Argument arrays
 * only; the environment tells the post-receive shim how to reach the server.
 */
import type { Readable, Writable } from 'node:stream';
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

export interface ServiceContext {
  /** The server's hook socket and entry point, for the post-receive shim. */
  hookSocket: string;
  bin: string;
  pusher: string;
  /** The client's GIT_PROTOCOL (e.g. "version=2"), passed on when well-formed. */
  protocol?: string;
}

export function serviceEnv(context: ServiceContext): Record<string, string> {
  const env: Record<string, string> = {
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    UPAAS_HOOK_SOCKET: context.hookSocket,
    UPAAS_BIN: context.bin,
    UPAAS_PUSHER: context.pusher,
  };
  if (context.protocol && /^[a-z0-9=:.,-]+$/i.test(context.protocol)) env.GIT_PROTOCOL = context.protocol;
  return env;
}

/** Runs `git <service> <repo>` over the given streams; resolves with its exit code. */
export async function runGitService(
  service: GitService,
  repo: string,
  streams: { stdin: Readable; stdout: Writable; stderr: Writable },
  context: ServiceContext,
  signal?: AbortSignal,
): Promise<number> {
  if (service === 'git-receive-pack') await installHooks(repo);
  const child = execa('git', [service.slice('git-'.length), repo], {
    env: serviceEnv(context),
    stdin: 'pipe',
    buffer: false,
    reject: false,
    cancelSignal: signal,
  });
  streams.stdin.pipe(child.stdin);
  child.stdin.on('error', () => undefined);
  child.stdout.pipe(streams.stdout, { end: false });
  child.stderr.pipe(streams.stderr, { end: false });
  const result = await child;
  streams.stdin.unpipe(child.stdin);
  return result.exitCode ?? 128;
}
