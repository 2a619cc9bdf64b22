/**
 * Last line of defence before a build's temp folder is removed: no mount may
 * remain below it (the namespaces should make this a no-op). Any that do are
 * detached, deepest first, so `rm -rf` can never reach into a mounted host path.
 */
import { readFile } from 'node:fs/promises';
import { run } from '../process/run.ts';

/** Mount points at or below `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const table = await readFile('/proc/self/mounts', 'utf8');
  return table
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .map((field) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

export async function ensureNoMountsUnder(dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) {
    await run('umount', ['--lazy', point]);
  }
}
