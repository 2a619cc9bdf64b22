/** `upaas build APP [--fresh] [--rev REV] [--interpreter VERSION]`: builds a package and streams its log. */
import type { BuildOutcome } from '../builder/builder.ts';
import { exitCodeFor } from '../builder/errors.ts';
import { VERSION } from '../config/patterns.ts';
import { runBuild } from '../core/builds.ts';
import type { QueueRequest } from '../core/queue.ts';
import { type Invocation, UsageError, defineCommand } from './command.ts';

/**
 * Runs a build for a command and streams its lines to the caller: in the
 * server it waits its turn like a push (and coalesces with waiting pushes)
 * and goes on if the caller goes away; locally it runs here. The exit code
 * says how it ended.
 */
export async function buildForCaller({ io, services }: Invocation, request: QueueRequest): Promise<number> {
  const all = services();
  const onLine = (line: string) => io.out(`${line}\n`);
  let outcome: BuildOutcome | null;
  if (all.queue) {
    const queue = all.queue;
    outcome = await new Promise((resolve) => queue.request(request, { line: onLine, done: resolve }));
    if (outcome === null) return 2;
  } else {
    outcome = await runBuild(all, { ...request, onLine, signal: io.signal });
  }
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
