/** `upaas builds APP [--json]`: the app's builds, newest first. */
import { defineCommand } from './command.ts';
import { printJson } from './output.ts';

export const buildsCommand = defineCommand({
  name: 'builds',
  summary: "list APP's builds, newest first",
  positionals: [{ name: 'APP', repo: true }],
  options: { json: { type: 'boolean' } },
  access: 'repo:read',
  async run({ io, services }, { values, repo }) {
    const app = repo.name;
    const list = services().state.builds.list(app);
    if (values.json) {
      await printJson(io, list);
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
});
