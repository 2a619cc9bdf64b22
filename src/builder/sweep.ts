/**
 * Crash recovery when the server starts: builds left "running" by a process
 * that is gone are marked failed (system error), and the temp folders such
 * builds left in paths.workdir are removed (after making sure nothing is
 * mounted below them). Folders of builds that still run (a local `upaas
 * build` beside the server) are left alone.
 */
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/config.ts';
import { removeTree } from '../sandbox/mounts.ts';
import type { State } from '../state/state.ts';

/** A build's temp folder: APP-BUILDID-XXXXXX (mkdtemp's six characters). */
const BUILD_DIR = /-([0-9]+)-[A-Za-z0-9]{6}$/;

export async function sweepInterrupted(config: Config, state: State, log: (line: string) => void): Promise<void> {
  for (const build of state.builds.reapStale()) {
    log(`upaas: build ${build.id} of ${build.app} was interrupted (its process is gone); marked failed`);
  }
  let entries: string[];
  try {
    entries = await readdir(config.paths.workdir);
  } catch {
    return;
  }
  const live = state.builds.liveIds();
  for (const entry of entries) {
    const id = BUILD_DIR.exec(entry)?.[1];
    if (id === undefined || live.has(Number(id))) continue;
    const dir = join(config.paths.workdir, entry);
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
