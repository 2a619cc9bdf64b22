/** `upaas packages APP [--json]`: the app's packages, newest first. */
import { formatBytes } from '../../builder/log.ts';
import { listPackages } from '../../core/packages.ts';
import { defineCommand } from '../command.ts';
import { printJson } from '../output.ts';

export const packagesCommand = defineCommand({
  name: 'packages',
  summary: "list APP's packages, newest first (* marks the current one, - one whose file was deleted)",
  positionals: [{ name: 'APP', repo: true }],
  options: { json: { type: 'boolean' } },
  access: 'repo:read',
  async run({ io, services }, { values, repo }) {
    const list = listPackages(services(), repo.name);
    if (values.json) {
      await printJson(io, list);
      return 0;
    }
    if (list.length === 0) io.out(`${repo.name} has no packages yet\n`);
    for (const p of list) {
      const line = [
        p.current ? '*' : p.file ? ' ' : '-',
        p.id.slice(0, 12),
        p.createdAt,
        p.revision.slice(0, 12),
        `${p.interpreter.type} ${p.interpreter.version}`,
        formatBytes(p.bytes),
        p.fresh ? 'fresh' : `from ${p.parent?.slice(0, 12)}`,
        ...(p.file ? [] : ['(file deleted)']),
      ];
      io.out(`${line.join('  ')}\n`);
    }
    return 0;
  },
});
