/** `releases APP [--json]`: each change of APP's current package, newest first. */
import { listReleases } from '../core/packages.ts';
import { defineCommand } from './command.ts';
import { printJson } from './output.ts';

export const releasesCommand = defineCommand({
  name: 'releases',
  summary: "list APP's releases (each change of its current package), newest first; a failed deploy is marked",
  positionals: [{ name: 'APP', repo: true }],
  options: { json: { type: 'boolean' } },
  access: 'repo:read',
  async run({ io, services }, { values, repo }) {
    const list = listReleases(services(), repo.name);
    if (values.json) {
      await printJson(io, list);
      return 0;
    }
    if (list.length === 0) io.out(`${repo.name} has no releases yet\n`);
    for (const r of list) {
      const how = r.kind === 'build' ? `build #${r.build ?? '?'}` : 'rollback';
      const failed = r.status === 'failed' ? [`deploy failed: ${r.failure ?? '?'}`] : [];
      io.out(`${[`v${r.version}`, r.package.slice(0, 12), how.padEnd(10), r.by ?? '-', r.createdAt, ...failed].join('  ')}\n`);
    }
    return 0;
  },
});
