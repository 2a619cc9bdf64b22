/** `upaas build APP [--fresh] [--rev REV] [--interpreter VERSION]`: builds a package and streams its log. */
import { exitCodeFor } from '../builder/errors.ts';
import { VERSION } from '../config/patterns.ts';
import { requestBuild } from '../core/build-request.ts';
import type { QueueRequest } from '../core/queue.ts';
import { type Invocation, UsageError, defineCommand } from './command.ts';

/**
 * Runs a build for a command and streams its lines to the caller
 * (core/build-request.ts: queued in the server, here locally). The exit code
 * says how it ended.
 */
export async function buildForCaller({ io, services }: Invocation, request: QueueRequest): Promise<number> {
  const outcome = await requestBuild(services(), request, { line: (line) => io.out(`${line}\n`), signal: io.signal });
  if (outcome === null) return 2;
  return outcome.ok ? 0 : exitCodeFor(outcome.error.kind);
}

export const buildCommand = defineCommand({
  name: 'build',
  summary: 'build a package of APP from REV (default: the deploy branch) and make it current',
  positionals: [{ name: 'APP', repo: true }],
  options: { fresh: { type: 'boolean' }, rev: { type: 'string', value: 'REV' }, interpreter: { type: 'string', value: 'VERSION' } },
  access: 'repo:write',
  async run(invocation, { values, repo }) {
    if (values.interpreter !== undefined && !VERSION.test(values.interpreter)) {
      throw new UsageError(`--interpreter: expected a version like 3.11, got ${JSON.stringify(values.interpreter)}`);
    }
    return buildForCaller(invocation, {
      app: repo.name,
      revision: values.rev,
      fresh: Boolean(values.fresh),
      interpreterVersion: values.interpreter,
      requestedBy: invocation.user.name,
    });
  },
});
