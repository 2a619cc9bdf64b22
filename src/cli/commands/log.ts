/** `upaas log APP [BUILD]`: a build's stored log (default: the latest build). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoNameFrom } from '../../git/repos.ts';
import { type Command, CommandError, UsageError, parse } from '../command.ts';

export const logCommand: Command = {
  name: 'log',
  usage: 'log APP [BUILD]',
  summary: "print a build's log (default: the latest build of APP)",
  access: 'repo:read',
  async run({ args, io, services }) {
    const { positionals } = parse(args, {}, { min: 1, max: 2 });
    const app = repoNameFrom(positionals[0] as string);
    const wanted = positionals[1];
    if (wanted !== undefined && !/^[0-9]+$/.test(wanted)) throw new UsageError(`BUILD: expected a build number, got ${JSON.stringify(wanted)}`);
    const { config, state } = services();
    const record = wanted === undefined ? state.builds.latest(app) : state.builds.get(app, Number(wanted));
    if (!record) throw new CommandError(wanted === undefined ? `${app} has no builds` : `${app} has no build ${wanted}`);
    // A running build's log is only in its file so far.
    const text =
      state.builds.log(record.id) ??
      (await readFile(join(config.paths.state, 'logs', app, `${record.id}.log`), 'utf8').catch(() => ''));
    io.out(text);
    return 0;
  },
};
