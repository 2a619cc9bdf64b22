/** `upaas build APP [--fresh] [--rev REV] [--interpreter VERSION]`: builds a package and streams its log. */
import type { BuildOutcome } from '../builder/builder.ts';
import { runBuild } from '../core/builds.ts';
import { exitCodeFor } from '../builder/errors.ts';
import { VERSION } from '../config/patterns.ts';
import { UsageError, defineCommand } from './command.ts';

export const buildCommand = defineCommand({
  name: 'build',
  summary: 'build a package of APP from REV (default: the deploy branch) and make it current',
  positionals: [{ name: 'APP', repo: true }],
  options: { fresh: { type: 'boolean' }, rev: { type: 'string', value: 'REV' }, interpreter: { type: 'string', value: 'VERSION' } },
  access: 'repo:write',
  async run({ io, user, services }, { values, repo }) {
    if (values.interpreter !== undefined && !VERSION.test(values.interpreter)) {
      throw new UsageError(`--interpreter: expected a version like 3.11, got ${JSON.stringify(values.interpreter)}`);
    }
    const all = services();
    const request = { app: repo.name, revision: values.rev, fresh: Boolean(values.fresh), interpreterVersion: values.interpreter, requestedBy: user.name };
    const onLine = (line: string) => io.out(`${line}\n`);
    let outcome: BuildOutcome | null;
    if (all.queue) {
      // In the server, a build waits its turn like a push (and coalesces with
      // waiting pushes); it goes on if the caller goes away.
      const queue = all.queue;
      outcome = await new Promise((resolve) => queue.request(request, { line: onLine, done: resolve }));
      if (outcome === null) return 2;
    } else {
      outcome = await runBuild(all, { ...request, onLine, signal: io.signal });
    }
    return outcome.ok ? 0 : exitCodeFor(outcome.error.kind);
  },
});
