/**
 * Who runs a build, in a form that survives PID reuse: the boot, the PID and
 * the process's start time (field 22 of /proc/PID/stat). A build recorded as
 * running is alive only while that exact process exists, not merely some
 * process that got the same PID after a crash or a reboot.
 */
import { readFileSync } from 'node:fs';

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown-boot';
  }
}

function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** The identity of process `pid` now, or null when there is no such process. */
export function processIdentity(pid: number): string | null {
  const started = startTime(pid);
  return started === null ? null : `${bootId()}/${pid}/${started}`;
}

/** Whether the process recorded as `identity` still runs. */
export function stillRunning(identity: string): boolean {
  const pid = Number(identity.split('/')[1]);
  return Number.isInteger(pid) && pid > 0 && processIdentity(pid) === identity;
}
