/**
 * A build's cgroup: its processes and memory (swap included) are limited
 * (builder.limits), and the kernel's own counters say whether a limit was hit
 * (a fork refused, a process killed for memory), whatever the build's scripts
 * did with the failure. Both hierarchies are supported:
 *
 * - v2 (unified, most Debian 12 hosts): /sys/fs/cgroup/upaas.ID/NAME with
 *   pids.max, memory.max, memory.swap.max = 0; counters in pids.events and
 *   memory.events; cgroup.kill empties it.
 * - v1 (this project's CI machine): NAME under the server's own cgroup of the
 *   pids and memory controllers (so container limits still apply), with
 *   pids.max, memory.limit_in_bytes and memory.memsw.limit_in_bytes;
 *   counters in pids.events and memory.oom_control.
 *
 * A process joins by writing 0 (itself) into each `procs` file before it
 * starts anything, so every process of a command is counted from the start.
 * ID is a hash of paths.state: two servers on one host never touch each
 * other's cgroups.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CgroupLimits {
  /** Processes and threads at once; 0: no limit. */
  processes: number;
  /** MiB of memory, swap included; 0: no limit. */
  memoryMiB: number;
}

export type Layout =
  | { version: 2; root: string }
  | { version: 1; pids: string | null; memory: string | null; unified: string | null };

/** How this host's cgroups are mounted, and (v1) where this process sits in each hierarchy. */
export function detectLayout(base = '/sys/fs/cgroup', self = readFileSync('/proc/self/cgroup', 'utf8')): Layout {
  if (existsSync(join(base, 'cgroup.controllers'))) return { version: 2, root: base };
  const own = (controller: string): string | null => {
    const line = self.split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller));
    const mount = join(base, controller);
    if (!line || !existsSync(join(mount, 'cgroup.procs'))) return null;
    const path = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1).replace(/^\/+/, '');
    return path ? join(mount, path) : mount;
  };
  const unified = existsSync(join(base, 'unified', 'cgroup.procs')) ? join(base, 'unified') : null;
  return { version: 1, pids: own('pids'), memory: own('memory'), unified };
}

/** The folder name under which one server's build cgroups live. */
export const parentName = (stateDir: string) => `upaas.${createHash('sha256').update(stateDir).digest('hex').slice(0, 12)}`;

export class CgroupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CgroupError';
  }
}

/** What a limit hit looks like in the kernel's counters. */
export interface LimitHits {
  processes: boolean;
  memory: boolean;
}

/** `key N` lines (pids.events, memory.events, memory.oom_control) as numbers. */
export function counters(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && /^[0-9]+$/.test(value)) out[key] = Number(value);
  }
  return out;
}

const readCounters = async (file: string) => counters(await readFile(file, 'utf8').catch(() => ''));

async function write(file: string, value: string): Promise<void> {
  try {
    await writeFile(file, value);
  } catch (error) {
    throw new CgroupError(`cannot write ${JSON.stringify(value)} to ${file}: ${(error as Error).message}`, { cause: error });
  }
}

export class BuildCgroup {
  private constructor(
    readonly layout: Layout,
    /** The cgroup folders (one on v2; one per controller on v1). */
    readonly dirs: { controller: 'pids' | 'memory' | 'unified'; dir: string }[],
    readonly limits: CgroupLimits,
  ) {}

  /** The files a process writes 0 into to join. */
  get procs(): string[] {
    return this.dirs.map((d) => join(d.dir, 'cgroup.procs'));
  }

  /** Makes the cgroup `name` of the server whose build cgroups live under `parent` (parentName). */
  static async create(layout: Layout, parent: string, name: string, limits: CgroupLimits): Promise<BuildCgroup> {
    const memoryBytes = String(limits.memoryMiB * 1024 * 1024);
    if (layout.version === 2) {
      const controllers = [limits.processes > 0 ? '+pids' : '', limits.memoryMiB > 0 ? '+memory' : ''].filter(Boolean).join(' ');
      const top = join(layout.root, parent);
      if (controllers) await write(join(layout.root, 'cgroup.subtree_control'), controllers);
      await mkdir(top, { recursive: true });
      if (controllers) await write(join(top, 'cgroup.subtree_control'), controllers);
      const dir = join(top, name);
      // Names are unique per build (its temp folder's); recursive only so that a given folder is taken as it is.
      await mkdir(dir, { recursive: true });
      const cgroup = new BuildCgroup(layout, [{ controller: 'unified', dir }], limits);
      try {
        if (limits.processes > 0) await write(join(dir, 'pids.max'), String(limits.processes));
        if (limits.memoryMiB > 0) {
          await write(join(dir, 'memory.max'), memoryBytes);
          if (existsSync(join(dir, 'memory.swap.max'))) await write(join(dir, 'memory.swap.max'), '0');
        }
      } catch (error) {
        await cgroup.remove().catch(() => undefined);
        throw error;
      }
      return cgroup;
    }
    const wanted: { controller: 'pids' | 'memory'; mount: string | null }[] = [];
    if (limits.processes > 0) wanted.push({ controller: 'pids', mount: layout.pids });
    if (limits.memoryMiB > 0) wanted.push({ controller: 'memory', mount: layout.memory });
    const cgroup = new BuildCgroup(layout, [], limits);
    try {
      for (const { controller, mount } of wanted) {
        if (mount === null) throw new CgroupError(`the cgroup v1 ${controller} controller is not mounted under /sys/fs/cgroup/${controller}`);
        const dir = join(mount, parent, name);
        await mkdir(dir, { recursive: true });
        cgroup.dirs.push({ controller, dir });
        if (controller === 'pids') await write(join(dir, 'pids.max'), String(limits.processes));
        else {
          await write(join(dir, 'memory.limit_in_bytes'), memoryBytes);
          // Swap accounting (memsw) exists when the kernel has it enabled; then swap counts too.
          if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) await write(join(dir, 'memory.memsw.limit_in_bytes'), memoryBytes);
        }
      }
    } catch (error) {
      await cgroup.remove().catch(() => undefined);
      throw error;
    }
    return cgroup;
  }

  /** Which limits the kernel counted as hit so far. */
  async hits(): Promise<LimitHits> {
    const hits = { processes: false, memory: false };
    for (const { controller, dir } of this.dirs) {
      if (controller === 'pids' || (controller === 'unified' && this.limits.processes > 0)) {
        hits.processes ||= ((await readCounters(join(dir, 'pids.events'))).max ?? 0) > 0;
      }
      if (controller === 'memory') hits.memory ||= ((await readCounters(join(dir, 'memory.oom_control'))).oom_kill ?? 0) > 0;
      if (controller === 'unified' && this.limits.memoryMiB > 0) hits.memory ||= ((await readCounters(join(dir, 'memory.events'))).oom_kill ?? 0) > 0;
    }
    return hits;
  }

  /** Kills whatever still runs in the cgroup and removes it. */
  async remove(): Promise<void> {
    for (const { dir } of [...this.dirs].reverse()) await removeCgroup(dir);
  }
}

/** Kills every process in the cgroup at `dir` (cgroup.kill where the kernel has it), waits until it is empty, removes it. */
export async function removeCgroup(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const kill = join(dir, 'cgroup.kill');
  if (existsSync(kill)) await writeFile(kill, '1').catch(() => undefined);
  for (let attempt = 0; ; attempt++) {
    const pids = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      // EBUSY while killed processes are still being reaped.
      if (attempt >= 100) throw new CgroupError(`cannot remove the cgroup ${dir}: ${(error as Error).message}`, { cause: error });
      await sleep(50);
    }
  }
}

/** This server's parent folders (one per hierarchy in use), whether or not they exist. */
export function parentFolders(layout: Layout, parent: string): string[] {
  return layout.version === 2 ? [join(layout.root, parent)] : [layout.pids, layout.memory].filter((m): m is string => m !== null).map((m) => join(m, parent));
}

/** The build cgroups left under this server's parent folder (for the start-up sweep), by name. */
export async function leftoverCgroups(layout: Layout, parent: string): Promise<Map<string, string[]>> {
  const bases = parentFolders(layout, parent);
  const found = new Map<string, string[]>();
  for (const base of bases) {
    for (const entry of await readdir(base, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) found.set(entry.name, [...(found.get(entry.name) ?? []), join(base, entry.name)]);
    }
  }
  return found;
}

/**
 * The cgroup the network helpers (slirp4netns) of isolated builds run in, on
 * the cgroup v2 hierarchy (v2 hosts, or v1 hosts' unified mount): nftables
 * matches their sockets by it. Null when the host has no cgroup v2 hierarchy.
 */
export async function networkCgroup(layout: Layout, base = '/sys/fs/cgroup'): Promise<{ procs: string; nftPath: string; level: number } | null> {
  const root = layout.version === 2 ? layout.root : layout.unified;
  if (root === null) return null;
  const dir = join(root, 'upaas.network');
  await mkdir(dir, { recursive: true });
  // nft names a cgroup by its path below /sys/fs/cgroup, wherever cgroup2 is mounted there.
  const nftPath = root === base ? 'upaas.network' : `${root.slice(base.length + 1)}/upaas.network`;
  return { procs: join(dir, 'cgroup.procs'), nftPath, level: 1 };
}
