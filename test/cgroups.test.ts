/**
 * Build cgroups: limits, the kernel's counters, removal and the start-up
 * sweep on this machine's real hierarchy (cgroup v1 here), the cgroup v2
 * lifecycle on the real unified mount, and the v2 limit files on a copy of
 * the v2 layout (this machine has no v2 controllers to give).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { sweepInterrupted } from '../src/builder/sweep.ts';
import { parseConfig } from '../src/config/config.ts';
import { BuildCgroup, counters, detectLayout, leftoverCgroups, parentName } from '../src/sandbox/cgroups.ts';
import { State } from '../src/state/state.ts';
import { removeCgroupParents } from './helpers/world.ts';

/** Runs `script` with sh, joined to the cgroup first (as the sandbox's prelude does). */
const inCgroup = (cgroup: BuildCgroup, script: string) =>
  execa('sh', ['-c', `for f in ${cgroup.procs.map((p) => `'${p}'`).join(' ')}; do echo 0 > "$f"; done; ${script}`], { reject: false });

describe('build cgroups', function () {
  this.timeout(60_000);
  let dir: string;
  const parent = () => parentName(dir);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-cgroups-'));
  });
  afterEach(() => {
    removeCgroupParents(dir);
    removeCgroupParents(join(dir, 'state'));
    rmSync(dir, { recursive: true, force: true });
  });

  it('limits processes and memory on this host, and the counters say which limit was hit', async () => {
    const layout = detectLayout();
    const cgroup = await BuildCgroup.create(layout, parent(), 'app-1-abcdef', { processes: 20, memoryMiB: 64 });
    try {
      for (const { controller, dir: at } of cgroup.dirs) {
        if (controller === 'pids' || controller === 'unified') expect(readFileSync(join(at, 'pids.max'), 'utf8').trim()).to.equal('20');
      }
      expect(await cgroup.hits()).to.deep.equal({ processes: false, memory: false });
      const hog = await inCgroup(cgroup, 'head -c 1G /dev/zero | tail -n 1 > /dev/null; exit 0');
      expect(hog.exitCode, 'the script ignored the killed tail').to.equal(0);
      expect(await cgroup.hits(), 'a process killed for memory is counted').to.deep.equal({ processes: false, memory: true });
      await inCgroup(cgroup, "sh -c 'for i in $(seq 40); do sleep 1 & done' 2>/dev/null; exit 0");
      expect((await cgroup.hits()).processes, 'a refused fork is counted').to.equal(true);
    } finally {
      await cgroup.remove();
    }
    for (const { dir: at } of cgroup.dirs) expect(existsSync(at), at).to.equal(false);
  });

  it('removal kills what still runs in it', async () => {
    const cgroup = await BuildCgroup.create(detectLayout(), parent(), 'app-2-abcdef', { processes: 50, memoryMiB: 0 });
    const sleeper = inCgroup(cgroup, 'sleep 300 & sleep 300 & wait');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(readFileSync(cgroup.procs[0] as string, 'utf8').trim().split('\n')).to.have.length.at.least(2);
    await cgroup.remove();
    expect((await sleeper).signal).to.equal('SIGKILL');
  });

  it('the start-up sweep removes the cgroups of builds that are gone, and only those', async () => {
    const state = State.open(join(dir, 'state'));
    try {
      const config = parseConfig({ paths: { workdir: join(dir, 'work'), state: join(dir, 'state'), repos: join(dir, 'repos') } }, null);
      const stale = state.builds.start('app', { fresh: false, pid: 999_999 });
      const running = state.builds.start('other', { fresh: false });
      const layout = detectLayout();
      const name = (id: number, app: string) => `${app}-${id}-abc123`;
      const staleGroup = await BuildCgroup.create(layout, parentName(config.paths.state), name(stale.id, 'app'), { processes: 10, memoryMiB: 16 });
      const liveGroup = await BuildCgroup.create(layout, parentName(config.paths.state), name(running.id, 'other'), { processes: 10, memoryMiB: 16 });
      try {
        const lines: string[] = [];
        await sweepInterrupted(config, state, (line) => lines.push(line));
        expect([...(await leftoverCgroups(layout, parentName(config.paths.state))).keys()]).to.deep.equal([name(running.id, 'other')]);
        for (const { dir: at } of staleGroup.dirs) expect(existsSync(at)).to.equal(false);
        expect(lines.some((l) => l.includes('removed the cgroup'))).to.equal(true);
      } finally {
        await liveGroup.remove();
        await staleGroup.remove();
      }
    } finally {
      state.close();
    }
  });

  it('cgroup v2: a build cgroup on the real unified hierarchy is joined, killed and removed', async function () {
    const layout = detectLayout();
    const unified = layout.version === 2 ? layout.root : layout.unified;
    if (!unified) this.skip();
    const cgroup = await BuildCgroup.create({ version: 2, root: unified as string }, parent(), 'app-3-abcdef', { processes: 0, memoryMiB: 0 });
    const sleeper = inCgroup(cgroup, 'sleep 300');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(readFileSync(cgroup.procs[0] as string, 'utf8').trim()).to.match(/^[0-9]+(\n[0-9]+)*$/);
    await cgroup.remove();
    expect((await sleeper).signal).to.equal('SIGKILL');
    expect(existsSync(join(unified as string, parent(), 'app-3-abcdef'))).to.equal(false);
  });

  it('cgroup v2: enables the controllers, writes the limits (swap 0) and reads memory.events and pids.events', async () => {
    // A copy of the v2 layout: what the kernel makes, the test writes.
    const root = join(dir, 'v2');
    mkdirSync(root);
    writeFileSync(join(root, 'cgroup.controllers'), 'cpu io memory pids\n');
    writeFileSync(join(root, 'cgroup.subtree_control'), '');
    const layout = detectLayout(root, '0::/\n');
    expect(layout).to.deep.equal({ version: 2, root });
    const at = join(root, parent(), 'app-5-abcdef');
    // The kernel makes memory.swap.max with the folder (where swap is accounted): here the test does.
    mkdirSync(at, { recursive: true });
    writeFileSync(join(at, 'memory.swap.max'), 'max\n');
    const cgroup = await BuildCgroup.create(layout, parent(), 'app-5-abcdef', { processes: 30, memoryMiB: 100 });
    expect(readFileSync(join(root, 'cgroup.subtree_control'), 'utf8')).to.equal('+pids +memory');
    expect(readFileSync(join(root, parent(), 'cgroup.subtree_control'), 'utf8')).to.equal('+pids +memory');
    expect(readFileSync(join(at, 'pids.max'), 'utf8')).to.equal('30');
    expect(readFileSync(join(at, 'memory.max'), 'utf8')).to.equal(String(100 * 1024 * 1024));
    expect(readFileSync(join(at, 'memory.swap.max'), 'utf8'), 'no swap: memory + swap stays within the limit').to.equal('0');
    expect(cgroup.procs).to.deep.equal([join(at, 'cgroup.procs')]);
    writeFileSync(join(at, 'pids.events'), 'max 0\n');
    writeFileSync(join(at, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\noom_group_kill 0\n');
    expect(await cgroup.hits()).to.deep.equal({ processes: false, memory: false });
    writeFileSync(join(at, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n');
    writeFileSync(join(at, 'pids.events'), 'max 3\n');
    expect(await cgroup.hits()).to.deep.equal({ processes: true, memory: true });
  });

  it('reads v1 layouts from /proc/self/cgroup, and the kernel counters', () => {
    const base = join(dir, 'v1');
    for (const controller of ['pids', 'memory', 'unified']) {
      mkdirSync(join(base, controller), { recursive: true });
      writeFileSync(join(base, controller, 'cgroup.procs'), '');
    }
    const self = '12:pids:/\n4:memory:/machine/ct7\n1:name=systemd:/init.scope\n0::/\n';
    expect(detectLayout(base, self)).to.deep.equal({ version: 1, pids: join(base, 'pids'), memory: join(base, 'memory', 'machine/ct7'), unified: join(base, 'unified') });
    expect(counters('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n')).to.deep.equal({ oom_kill_disable: 0, under_oom: 0, oom_kill: 2 });
  });
});
