/**
 * Removing a build's trees safely. Last line of defence first: no mount may
 * remain below a tree (the namespaces should make this a no-op); any that do
 * are detached, deepest first, so removal can never reach into a mounted host
 * path. Then GNU rm, which (unlike Node's fs.rm) handles trees of any depth.
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

/**
 * Removes a tree an app may have shaped (any depth, any names) without ever
 * leaving its file system; throws with rm's message when it cannot.
 */
export async function removeTree(dir: string): Promise<void> {
  await ensureNoMountsUnder(dir);
  const lines: string[] = [];
  const result = await run('rm', ['-rf', '--one-file-system', '--', dir], { onLine: (line) => lines.push(line) });
  if (!result.ok) throw new Error(`cannot remove ${dir}: ${lines.slice(-3).join(' ') || `rm exited with ${result.exitCode}`}`);
}
