/**
 * Crash recovery when the server starts: builds left "running" by a process
 * that is gone are marked failed (system error), and the temp folders (with
 * their volumes and network namespaces) and cgroups such builds (and deploys) left are
 * removed (after making sure nothing is mounted below a folder, and killing
 * what still runs in a cgroup), and so are tree cache layers left half made. What belongs to builds that still run (a
 * local `upaas build` beside the server) is left alone.
 */
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/config.ts';
import { detectLayout, leftoverCgroups, parentName, removeCgroup } from '../sandbox/cgroups.ts';
import { mountsUnder, removeTree } from '../sandbox/mounts.ts';
import type { State } from '../state/state.ts';
import { buildOfFolder } from './folder-names.ts';
import { TreeCache } from './tree-cache.ts';


/**
 * The folder (and the cgroup, named like it) of a deploy (core/deploy.ts:
 * _deploy-PID-APP-XXXXXX) or of a run (core/run.ts: _run-PID-APP.XXXXXX): PID
 * is the process that made it, and it is left once that process is gone. No
 * app name starts with "_", so no build's folder (APP-BUILD-XXXXXX) looks like one.
 */
const PROCESS_DIR = /^_(deploy|run)-([0-9]+)-/;

/** How core/deploy.ts and core/run.ts name their folders (then their PID): PROCESS_DIR finds them. */
export const DEPLOY_DIR_PREFIX = '_deploy-';
export const RUN_DIR_PREFIX = '_run-';

/** What builds, deploys and runs that no longer run left: their temp folders (with what is mounted below them) and cgroups. */
export interface Leftovers {
  workdirs: { id: number; dir: string; mounts: string[] }[];
  cgroups: { id: number; dirs: string[] }[];
  /** Folders and cgroups of deploys and runs whose process is gone. */
  others: { what: 'deploy' | 'run'; dir: string | null; mounts: string[]; cgroupDirs: string[] }[];
}

/**
 * Finds what builds (and deploys, runs) that no longer run left under
 * paths.workdir and in this server's cgroups; changes nothing. The live builds
 * are asked for after the listing, so a build that starts meanwhile is seen as
 * live, never as left. `atStart`: nothing of this process exists yet, so what
 * names its PID is a predecessor's (a restarted container often gets the same
 * PID); otherwise (the doctor) this process's own are live.
 */
export async function findLeftovers(config: Config, liveIds: () => Set<number>, atStart = false): Promise<Leftovers> {
  const gone = async (name: string) => {
    const match = PROCESS_DIR.exec(name);
    if (!match) return null;
    const pid = Number(match[2]);
    const dead = pid === process.pid ? atStart : !(await processAlive(pid));
    return { what: match[1] as 'deploy' | 'run', dead };
  };
  const found: { id: number; dir: string }[] = [];
  const others = new Map<string, Leftovers['others'][number]>();
  for (const entry of await readdir(config.paths.workdir).catch(() => [] as string[])) {
    const dir = join(config.paths.workdir, entry);
    const other = await gone(entry);
    if (other) {
      if (other.dead) others.set(entry, { what: other.what, dir, mounts: await mountsUnder(dir), cgroupDirs: [] });
      continue;
    }
    const id = buildOfFolder(entry);
    if (id !== null) found.push({ id, dir });
  }
  let groups: { id: number; dirs: string[] }[] = [];
  try {
    const layout = detectLayout();
    for (const [name, dirs] of await leftoverCgroups(layout, parentName(config.paths.state))) {
      const other = await gone(name);
      if (other) {
        if (other.dead) {
          const known = others.get(name) ?? { what: other.what, dir: null, mounts: [], cgroupDirs: [] };
          others.set(name, { ...known, cgroupDirs: dirs });
        }
        continue;
      }
      const id = buildOfFolder(name);
      if (id !== null) groups.push({ id, dirs });
    }
  } catch {
    groups = [];
  }
  const live = liveIds();
  const workdirs: Leftovers['workdirs'] = [];
  for (const { id, dir } of found.filter((entry) => !live.has(entry.id))) workdirs.push({ id, dir, mounts: await mountsUnder(dir) });
  return { workdirs, cgroups: groups.filter((group) => !live.has(group.id)), others: [...others.values()] };
}

/** Whether process `pid` still runs. */
async function processAlive(pid: number): Promise<boolean> {
  return readlink(`/proc/${pid}/exe`).then(
    () => true,
    (error: NodeJS.ErrnoException) => error.code !== 'ENOENT',
  );
}

/** Marks builds of processes that are gone failed and removes what they left (see findLeftovers); logs each step. */
export async function sweepInterrupted(config: Config, state: State, log: (line: string) => void, atStart = false): Promise<void> {
  for (const build of state.builds.reapStale()) {
    log(`upaas: build ${build.id} of ${build.app} was interrupted (its process is gone); marked failed`);
  }
  const { workdirs, cgroups, others } = await findLeftovers(config, () => state.builds.liveIds(), atStart);
  for (const { what, dir, cgroupDirs } of others) {
    try {
      for (const group of cgroupDirs) {
        await removeCgroup(group);
        log(`upaas: removed the cgroup ${group}, left by an interrupted ${what}`);
      }
      if (dir) {
        await killProcessesIn(dir);
        await removeTree(dir);
        log(`upaas: removed ${dir}, left by an interrupted ${what}`);
      }
    } catch (error) {
      log(`upaas: could not remove what an interrupted ${what} left (${dir ?? cgroupDirs.join(', ')}): ${(error as Error).message}`);
    }
  }
  for (const { id, dirs } of cgroups) {
    for (const dir of dirs) {
      try {
        await removeCgroup(dir);
        log(`upaas: removed the cgroup ${dir}, left by interrupted build ${id}`);
      } catch (error) {
        log(`upaas: could not remove the cgroup ${dir}: ${(error as Error).message}`);
      }
    }
  }
  for (const { id, dir } of workdirs) {
    try {
      await killProcessesIn(dir);
      await removeTree(dir);
      log(`upaas: removed ${dir}, left by interrupted build ${id}`);
    } catch (error) {
      // One folder that will not go must not keep the server from starting.
      log(`upaas: could not remove ${dir}: ${(error as Error).message}`);
    }
  }
  try {
    for (const dir of await new TreeCache(config, state).sweep(() => state.builds.liveIds())) log(`upaas: removed ${dir}, a tree cache layer left half made or half removed`);
  } catch (error) {
    log(`upaas: could not sweep the tree cache: ${(error as Error).message}`);
  }
}

/** SIGKILLs every process whose root or working directory is inside `dir` (a command that outlived its build). */
async function killProcessesIn(dir: string): Promise<void> {
  const inside = (path: string) => path === dir || path.startsWith(`${dir}/`);
  for (const pid of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      const [root, cwd] = await Promise.all([readlink(`/proc/${pid}/root`), readlink(`/proc/${pid}/cwd`)]);
      if (inside(root) || inside(cwd)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone meanwhile, or not ours to see
    }
  }
}
