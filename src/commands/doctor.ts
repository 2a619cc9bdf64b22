/** `doctor [--deep] [--fix] [--json]`: is the server healthy? One line per problem; exit 0 only when healthy. */
import { formatBytes } from '../builder/log.ts';
import { runDoctor } from '../core/doctor.ts';
import { defineCommand } from './command.ts';
import { printJson } from './output.ts';

export const doctorCommand = defineCommand({
  name: 'doctor',
  summary: 'check the config, programs, state, builds, packages, storage, leftovers and disk (--fix mends what it can)',
  positionals: [],
  options: { deep: { type: 'boolean' }, fix: { type: 'boolean' }, json: { type: 'boolean' } },
  access: 'admin',
  async run({ io, services, local }, { values }) {
    const report = await runDoctor(services(), { deep: values.deep, fix: values.fix, local });
    if (values.json) {
      await printJson(io, report);
    } else {
      for (const line of report.fixed) io.out(`fixed: ${line}\n`);
      for (const problem of report.problems) io.out(`${problem.kind}: ${problem.message}\n`);
      io.out(
        report.healthy
          ? `healthy: ${report.checks.length} checks passed (${report.checks.map((c) => c.name).join(', ')})\n`
          : `unhealthy: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}${values.fix ? ' left' : ''}${values.fix ? '' : ' (doctor --fix mends stale builds, leftovers and stray files)'}\n`,
      );
      const { trees, layers, bytes, limits } = report.cache;
      io.out(`tree cache: ${trees} tree${trees === 1 ? '' : 's'} (${layers} layer${layers === 1 ? '' : 's'}, ${formatBytes(bytes)}); builder.cache keeps at most ${limits.trees} trees and ${limits.size} GiB, each at most ${limits.layers} layers deep\n`);
    }
    return report.healthy ? 0 : 1;
  },
});
