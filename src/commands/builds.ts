/** `upaas builds APP [--json]`: the app's builds, newest first. */
import { repoNameFrom } from '../git/repos.ts';
import { type Command, parse } from './command.ts';

export const buildsCommand: Command = {
  name: 'builds',
  usage: 'builds APP [--json]',
  summary: "list APP's builds, newest first",
  access: 'repo:read',
  async run({ args, io, services }) {
    const { values, positionals } = parse(args, { json: { type: 'boolean' } }, { min: 1, max: 1 });
    const app = repoNameFrom(positionals[0] as string);
    const { state } = services();
    const list = state.builds.list(app);
    if (values.json) {
      io.out(`${JSON.stringify(list, null, 2)}\n`);
      return 0;
    }
    if (list.length === 0) io.out(`${app} has no builds yet\n`);
    for (const b of list) {
      const result =
        b.status === 'failed' ? `failed: ${b.errorKind} error: ${b.errorMessage}` : b.status === 'succeeded' ? `package ${b.packageId?.slice(0, 12)}` : 'running';
      io.out(`${[`#${b.id}`, b.startedAt, b.revision?.slice(0, 12) ?? '-', b.fresh ? 'fresh' : 'incremental', result].join('  ')}\n`);
    }
    return 0;
  },
};
