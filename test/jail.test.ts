/**
 * A build's jail on its own: the volume (a real loop-mounted ext4), the
 * network namespace with slirp4netns, the cgroup, and the cleanup stack that
 * undoes all of it, also when making it fails halfway.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { Cleanup } from '../src/process/cleanup.ts';
import { detectLayout, leftoverCgroups, networkCgroup, parentName } from '../src/sandbox/cgroups.ts';
import { Jail } from '../src/sandbox/jail.ts';
import { filterRules } from '../src/sandbox/network.ts';
import { openVolume } from '../src/sandbox/volume.ts';
import { removeCgroupParents } from './helpers/world.ts';

const mountsUnder = (dir: string) =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point.startsWith(dir));

describe('build jail', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-jail-'));
  });
  afterEach(() => {
    removeCgroupParents(join(dir, 'state'));
    expect(mountsUnder(dir)).to.deep.equal([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a volume holds its size and no more, says when it is full, and is unmounted by the cleanup', async () => {
    const cleanup = new Cleanup();
    const volume = await openVolume(dir, 32, cleanup);
    try {
      expect(mountsUnder(dir)).to.deep.equal([volume.path]);
      expect(await volume.full()).to.equal(false);
      const fill = await execa('sh', ['-c', `head -c 64M /dev/zero > '${volume.path}/big'`], { reject: false });
      expect(fill.stderr).to.match(/No space left on device/);
      expect(await volume.full()).to.equal(true);
    } finally {
      await cleanup.close();
    }
  });

  it('an isolated jail has a namespace with slirp4netns; closing it leaves no mount, process or cgroup', async () => {
    const cleanup = new Cleanup();
    const stateDir = join(dir, 'state');
    const jail = await cleanup.build(() =>
      Jail.open(dir, { network: 'isolated', limits: { processes: 100, memory: 128, disk: 64 }, stateDir, name: 'app-1-abcdef' }, cleanup),
    );
    try {
      expect(jail.netns).to.equal(join(dir, 'netns'));
      expect(readFileSync(jail.resolvConf as string, 'utf8')).to.equal('nameserver 10.0.2.3\n');
      const inside = await execa('nsenter', [`--net=${jail.netns}`, 'ip', '-o', 'addr'], { reject: false });
      expect(String(inside.stdout)).to.include('tap0').and.include('10.0.2.100');
      expect(String((await execa('pgrep', ['-f', `slirp4netns.*${dir}`], { reject: false })).stdout)).to.match(/[0-9]+/);
      expect(jail.cgroupProcs.length).to.be.at.least(1);
      expect(await jail.limitHit()).to.equal(null);
    } finally {
      await cleanup.close();
    }
    expect(String((await execa('pgrep', ['-f', `slirp4netns.*${dir}`], { reject: false })).stdout)).to.equal('');
    expect([...(await leftoverCgroups(detectLayout(), parentName(stateDir))).keys()]).to.deep.equal([]);
  });

  it('a jail that cannot be made whole undoes the part that was made', async () => {
    const cleanup = new Cleanup();
    const stateDir = join(dir, 'state');
    // The cgroup, the volume and the network are made side by side; a volume that would leave less free than asked is refused.
    const failed = await cleanup
      .build(() =>
        Jail.open(dir, { network: 'none', limits: { processes: 100, memory: 0, disk: 1024 }, stateDir, name: 'app-2-abcdef', keepFreeMiB: 2 ** 40 }, cleanup),
      )
      .then(
        () => null,
        (error: unknown) => error as Error,
      );
    expect(failed).to.be.an('error');
    expect([...(await leftoverCgroups(detectLayout(), parentName(stateDir))).keys()]).to.deep.equal([]);
    // The network namespace made beside it is released: no longer mounted on its file.
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.to.include(join(dir, 'netns'));
  });

  it('the cleanup stack undoes newest first, every step even when one fails', async () => {
    const cleanup = new Cleanup();
    const order: string[] = [];
    cleanup.defer('first', () => {
      order.push('first');
    });
    cleanup.defer('second', () => {
      order.push('second');
      throw new Error('stuck');
    });
    cleanup.defer('third', () => {
      order.push('third');
    });
    const error = await cleanup.close().then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(order).to.deep.equal(['third', 'second', 'first']);
    expect(error?.message).to.equal('cleanup failed: second: stuck');
  });

  it('the nftables rules refuse the host, link-local and builder.blocked addresses to the network helpers, DNS to the resolvers excepted', async () => {
    const rules = filterRules({ nftPath: 'unified/upaas.network', level: 1 }, { v4: ['127.0.0.53'], v6: [] }, ['10.0.0.0/8', 'fd00::/8']);
    expect(rules).to.include('ip daddr 10.0.0.0/8 counter reject').and.include('ip6 daddr fd00::/8 counter reject');
    // nft itself accepts them (-c: check only), for this host's real network cgroup.
    const cgroup = await networkCgroup(detectLayout());
    if (cgroup) {
      writeFileSync(join(dir, 'rules.nft'), filterRules(cgroup, { v4: ['127.0.0.53'], v6: ['::1'] }, ['10.0.0.0/8', 'fd00::/8']));
      const checked = await execa('nft', ['-c', '-f', join(dir, 'rules.nft')], { reject: false });
      expect(checked.exitCode, String(checked.stderr)).to.equal(0);
    }
    expect(rules).to.include('socket cgroupv2 level 1 "unified/upaas.network" meta l4proto { tcp, udp } th dport 53 ip daddr { 127.0.0.53 } accept');
    expect(rules).to.include('socket cgroupv2 level 1 "unified/upaas.network" meta l4proto tcp fib daddr type local counter reject with tcp reset');
    expect(rules).to.include('ip daddr 169.254.0.0/16 counter reject');
    expect(rules.indexOf('dport 53')).to.be.below(rules.indexOf('type local'));
  });
});
