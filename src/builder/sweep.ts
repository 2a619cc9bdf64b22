/**
 * Crash recovery when the server starts: builds left "running" by a process
 * that is gone are marked failed (system error), and the temp folders (with
 * their volumes and network namespaces) and cgroups such builds (and deploys) left are
 * removed (after making sure nothing is mounted below a folder, and killing
 * what still runs in a cgroup). What belongs to builds that still run (a
 * local `upaas build` beside the server) is left alone.
 */
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/config.ts';
import { detectLayout, leftoverCgroups, parentName, removeCgroup } from '../sandbox/cgroups.ts';
import { mountsUnder, removeTree } from '../sandbox/mounts.ts';
import type { State } from '../state/state.ts';

/** A build's temp folder: APP-BUILDID-XXXXXX (mkdtemp's six characters). */
const BUILD_DIR = /-([0-9]+)-[A-Za-z0-9]{6}$/;

/** A deploy's folder (core/deploy.ts): deploy-PID-APP-XXXXXX, PID its creator's. */
const DEPLOY_DIR = /^deploy-([0-9]+)-.+-[A-Za-z0-9]{6}$/;

/** What builds and deploys that no longer run left: their temp folders (with what is mounted below them) and cgroups. */
export interface Leftovers {
  workdirs: { id: number; dir: string; mounts: string[] }[];
  cgroups: { id: number; dirs: string[] }[];
  /** Folders of deploys whose process is gone. */
  deploys: { dir: string; mounts: string[] }[];
}

/**
 * Finds what builds that no longer run left under paths.workdir and in this
 * server's cgroups; changes nothing. The live builds are asked for after the
 * listing, so a build that starts meanwhile is seen as live, never as left.
 */
export async function findLeftovers(config: Config, liveIds: () => Set<number>): Promise<Leftovers> {
  const found: { id: number; dir: string }[] = [];
  const deploys: Leftovers['deploys'] = [];
  for (const entry of await readdir(config.paths.workdir).catch(() => [] as string[])) {
    const dir = join(config.paths.workdir, entry);
    const pid = DEPLOY_DIR.exec(entry)?.[1];
    if (pid !== undefined) {
      if (!(await processAlive(Number(pid)))) deploys.push({ dir, mounts: await mountsUnder(dir) });
      continue;
    }
    const id = BUILD_DIR.exec(entry)?.[1];
    if (id !== undefined) found.push({ id: Number(id), dir });
  }
  let groups: { id: number; dirs: string[] }[] = [];
  try {
    const layout = detectLayout();
    for (const [name, dirs] of await leftoverCgroups(layout, parentName(config.paths.state))) {
      const id = BUILD_DIR.exec(name)?.[1];
      if (id !== undefined) groups.push({ id: Number(id), dirs });
    }
  } catch {
    groups = [];
  }
  const live = liveIds();
  const workdirs: Leftovers['workdirs'] = [];
  for (const { id, dir } of found.filter((entry) => !live.has(entry.id))) workdirs.push({ id, dir, mounts: await mountsUnder(dir) });
  return { workdirs, cgroups: groups.filter((group) => !live.has(group.id)), deploys };
}

/** Whether process `pid` still runs (this one counts as gone: a restarted server often gets its predecessor's PID). */
async function processAlive(pid: number): Promise<boolean> {
  if (pid === process.pid) return false;
  return readlink(`/proc/${pid}/exe`).then(
    () => true,
    (error: NodeJS.ErrnoException) => error.code !== 'ENOENT',
  );
}

/** Marks builds of processes that are gone failed and removes what they left (see findLeftovers); logs each step. */
export async function sweepInterrupted(config: Config, state: State, log: (line: string) => void): Promise<void> {
  for (const build of state.builds.reapStale()) {
    log(`upaas: build ${build.id} of ${build.app} was interrupted (its process is gone); marked failed`);
  }
  const { workdirs, cgroups, deploys } = await findLeftovers(config, () => state.builds.liveIds());
  for (const { dir } of deploys) {
    try {
      await removeTree(dir);
      log(`upaas: removed ${dir}, left by an interrupted deploy`);
    } catch (error) {
      log(`upaas: could not remove ${dir}: ${(error as Error).message}`);
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
