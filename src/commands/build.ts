/** `upaas build APP [--fresh] [--rev REV] [--interpreter VERSION]`: builds a package and streams its log. */
import { type BuildOutcome, build } from '../builder/builder.ts';
import { exitCodeFor } from '../builder/errors.ts';
import { VERSION } from '../config/patterns.ts';
import { repoNameFrom } from '../git/repos.ts';
import { createStorage } from '../storage/index.ts';
import { type Command, UsageError, parse } from './command.ts';

export const buildCommand: Command = {
  name: 'build',
  usage: 'build APP [--fresh] [--rev REV] [--interpreter VERSION]',
  summary: 'build a package of APP from REV (default: the deploy branch) and make it current',
  access: 'repo:write',
  async run({ args, io, user, services }) {
    const { values, positionals } = parse(
      args,
      { fresh: { type: 'boolean' }, rev: { type: 'string' }, interpreter: { type: 'string' } },
      { min: 1, max: 1 },
    );
    const app = repoNameFrom(positionals[0] as string);
    if (values.interpreter !== undefined && !VERSION.test(values.interpreter)) {
      throw new UsageError(`--interpreter: expected a version like 3.11, got ${JSON.stringify(values.interpreter)}`);
    }
    const { config, state, queue } = services();
    const request = { app, revision: values.rev, fresh: Boolean(values.fresh), interpreterVersion: values.interpreter, requestedBy: user.name };
    const onLine = (line: string) => io.out(`${line}\n`);
    let outcome: BuildOutcome | null;
    if (queue) {
      // In the server, a build waits its turn like a push (and coalesces with
      // waiting pushes); it goes on if the caller goes away.
      outcome = await new Promise((resolve) => queue.request(request, { line: onLine, done: resolve }));
      if (outcome === null) return 2;
    } else {
      outcome = await build({ config, state, storage: createStorage(config) }, { ...request, onLine, signal: io.signal });
    }
    return outcome.ok ? 0 : exitCodeFor(outcome.error.kind);
  },
};
