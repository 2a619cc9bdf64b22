/** `upaas packages APP [--json]`: the app's packages, newest first. */
import { formatBytes } from '../builder/log.ts';
import { defineCommand } from './command.ts';
import { printJson } from './output.ts';

export const packagesCommand = defineCommand({
  name: 'packages',
  summary: "list APP's packages, newest first (* marks the current one)",
  positionals: [{ name: 'APP', repo: true }],
  options: { json: { type: 'boolean' } },
  access: 'repo:read',
  async run({ io, services }, { values, repo }) {
    const app = repo.name;
    const { state } = services();
    const list = state.packages.list(app).map((p) => ({
      id: p.id,
      parent: p.parent,
      fresh: p.fresh,
      revision: p.revision,
      interpreter: p.interpreter,
      bytes: p.bytes,
      createdAt: p.createdAt,
      current: p.current,
      author: p.author,
      description: p.description,
      changelog: p.changelog,
      buildId: p.buildId,
    }));
    if (values.json) {
      await printJson(io, list);
      return 0;
    }
    if (list.length === 0) io.out(`${app} has no packages yet\n`);
    for (const p of list) {
      const line = [
        p.current ? '*' : ' ',
        p.id.slice(0, 12),
        p.createdAt,
        p.revision.slice(0, 12),
        `${p.interpreter.type} ${p.interpreter.version}`,
        formatBytes(p.bytes),
        p.fresh ? 'fresh' : `from ${p.parent?.slice(0, 12)}`,
      ];
      io.out(`${line.join('  ')}\n`);
    }
    return 0;
  },
});
