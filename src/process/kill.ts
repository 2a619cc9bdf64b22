/**
 * Kills a process and every process it started. Walking /proc catches children
 * that left the process group; killing the init of a PID namespace (a child of
 * `unshare --fork`) takes the whole namespace down with it.
 */
import { readFileSync } from 'node:fs';

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string;
  try {
    tasks = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  } catch {
    return out;
  }
  for (const word of tasks.split(/\s+/)) if (word) out.push(Number(word));
  return out;
}

/** All descendants of pid, parents before children. */
export function descendantsOf(pid: number): number[] {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift() as number;
    for (const child of childrenOf(next)) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

export function killTree(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  const victims = [pid, ...descendantsOf(pid)];
  // Stop them all first so that none can fork a replacement while we walk.
  for (const victim of victims) trySignal(victim, 'SIGSTOP');
  for (const victim of [...victims, ...descendantsOf(pid)]) trySignal(victim, signal);
  trySignal(-pid, signal);
  for (const victim of victims) trySignal(victim, 'SIGCONT');
}

function trySignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone, or not a process group leader.
  }
}
