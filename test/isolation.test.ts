/**
 * Builds cannot reach the host or starve it: real builds through the real
 * server, whose actions try what a hostile app would (the server's ports, the
 * host's own address, an abstract unix socket and a SysV segment the test made,
 * 3,000 processes, 6 GiB of memory, 25 GiB of disk) under small limits.
 * Each is refused or fails as a user error naming the limit, and the next
 * build of the same app succeeds.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { detectLayout, parentName } from '../src/sandbox/cgroups.ts';
import { type KeyPair, TestServer, makeKey } from './helpers/server.ts';
import { FIXTURE_BOOTSTRAP, PROJECT, type AppRepo, World, metadata } from './helpers/world.ts';

const ADD_TOOLS = join(PROJECT, 'test/fixtures/add-tools.sh');

/** A TCP server on every address of the host, answering nothing. */
function listenEverywhere(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer((socket) => socket.destroy());
    server.listen(0, '0.0.0.0', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

/** The host's first non-loopback IPv4 address (the "host's own address" a build must not reach). */
function hostAddress(): string | null {
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) if (entry.family === 'IPv4' && !entry.internal) return entry.address;
  }
  return null;
}

describe('build isolation', function () {
  this.timeout(240_000);
  let world: World;
  let server: TestServer;
  let admin: KeyPair;
  let probe: { server: Server; port: number };
  let abstract: Server;
  let shmId: string;
  let keyId: string;
  const abstractName = `upaas-test-abstract-${process.pid}`;
  const hostIp = hostAddress();

  before(async () => {
    admin = await makeKey('admin');
    probe = await listenEverywhere();
    abstract = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => abstract.listen(`\0${abstractName}`, () => resolve()));
    const made = await execa('ipcmk', ['-M', '4096']);
    shmId = /([0-9]+)\s*$/.exec(String(made.stdout))?.[1] as string;
    // A secret of the host's root in its user keyring (systemd keeps disk passphrases there).
    keyId = String((await execa('keyctl', ['add', 'user', `upaas-test-${process.pid}`, 'host-root-secret', '@u'])).stdout).trim();
  });

  after(async () => {
    probe.server.close();
    abstract.close();
    await execa('ipcrm', ['-m', shmId], { reject: false });
    await execa('keyctl', ['unlink', keyId, '@u'], { reject: false });
  });

  beforeEach(async () => {
    world = new World({
      builder: { limits: { processes: 200, memory: 256, disk: 512 } },
      bootstrap: {
        commands: [
          `sh ${FIXTURE_BOOTSTRAP} %workdir%`,
          `sh ${ADD_TOOLS} %workdir%`,
          // What a bootstrap command reaches: recorded in the image.
          `if bash -c 'echo > /dev/tcp/127.0.0.1/${probe.port}' 2>/dev/null; then echo reached; else echo blocked; fi > %workdir%/bootstrap-probe`,
          'echo "bootstrapped into %workdir%"',
        ],
      },
    });
    expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    server = new TestServer(world);
    await server.start({ host: '0.0.0.0' });
  });

  afterEach(async () => {
    const stateDir = join(world.dir, 'state');
    expect(await server.tearDown()).to.deep.equal([]);
    expect(cgroupsLeft(stateDir), 'build cgroups left behind').to.deep.equal([]);
  });

  /** Build cgroups of this world's server that still exist. */
  function cgroupsLeft(stateDir: string): string[] {
    const layout = detectLayout();
    const bases = layout.version === 2 ? [layout.root] : [layout.pids, layout.memory].filter((b): b is string => b !== null);
    return bases.map((b) => join(b, parentName(stateDir))).flatMap((dir) => (existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name)) : []));
  }

  async function buildWith(app: AppRepo, name: string, main: string) {
    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main } } }) });
    const result = await server.ssh(admin, ['build', name]);
    return { ...result, lines: result.stdout.split('\n').filter(Boolean) };
  }

  const attempt = (label: string, command: string) => `if timeout 10 ${command} 2>/dev/null; then echo "REACHED ${label}"; else echo "blocked ${label}"; fi`;

  it('an action reaches neither the server, nor the host, nor its IPC; DNS and outbound connections work; only stdio is open', async () => {
    const app = await world.app('probe');
    const tcp = (host: string, port: number) => `bash -c 'echo > /dev/tcp/${host}/${port}'`;
    const script = [
      attempt('server-ssh-on-loopback', tcp('127.0.0.1', server.sshPort)),
      attempt('server-http-on-loopback', tcp('127.0.0.1', server.httpPort)),
      attempt('host-loopback-through-slirp', tcp('10.0.2.2', server.sshPort)),
      ...(hostIp ? [attempt('server-on-host-address', tcp(hostIp, server.sshPort)), attempt('probe-on-host-address', tcp(hostIp, probe.port))] : []),
      attempt('abstract-socket', `perl -MSocket -e 'socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die; connect($s, pack("S a108", AF_UNIX, "\\0${abstractName}")) or die'`),
      attempt('sysv-shm', `perl -e 'shmread(${shmId}, my $b, 0, 4) or die'`),
      attempt('host-keyring', `keyctl print ${keyId}`),
      // Every keyring the kernel lists, linked into a new session, then every key in them read.
      attempt(
        'host-keyring-scanned',
        `sh -c 'keyctl new_session >/dev/null && for h in $(sed -n "s/^\\([0-9a-f]*\\) .* keyring .*/\\1/p" /proc/keys); do keyctl link $((0x$h)) @s; done; keyctl print ${keyId}'`,
      ),
      // request_key makes the kernel run /sbin/request-key as host root, in the host's network.
      attempt('key-upcall', `sh -c 'keyctl new_session >/dev/null && keyctl request2 dns_resolver deb.debian.org "" @s'`),
      'echo "keys listed: $(wc -l < /proc/keys)"',
      // inotify_init1(2) on x86_64: a build gets a share of root's instances, not all of them.
      `perl -e 'my $n = 0; for (1 .. 500) { $n++ if syscall(294, 0) >= 0 } print "inotify: $n\\n"'`,
      'for f in max_inotify_watches max_fanotify_groups max_fanotify_marks; do echo "$f: $(cat /proc/sys/user/$f)"; done',
      attempt('dns', `perl -MSocket -e 'inet_aton("deb.debian.org") or die'`),
      attempt('outbound', tcp('deb.debian.org', 80)),
      'echo "fds: $(ls /proc/self/fd | tr "\\n" " ")"',
      'echo "hostname: $(cat /proc/sys/kernel/hostname)"',
      'echo "bootstrap: $(cat /bootstrap-probe)"',
    ].join('\n');
    const result = await buildWith(app, 'probe', script);
    expect(result.exitCode, result.stdout + result.stderr).to.equal(0);
    // What the commands printed (the log also shows their text, which names both outcomes).
    const said = result.lines.map((line) => line.trim());
    const blocked = ['server-ssh-on-loopback', 'server-http-on-loopback', 'host-loopback-through-slirp', 'abstract-socket', 'sysv-shm', 'host-keyring', 'host-keyring-scanned', 'key-upcall'];
    if (hostIp) blocked.push('server-on-host-address', 'probe-on-host-address');
    for (const label of blocked) expect(said, label).to.include(`blocked ${label}`);
    expect(said).to.include('REACHED dns');
    expect(said).to.include('REACHED outbound');
    // ls's own listing of the folder is the 3.
    expect(said).to.include('fds: 0 1 2 3');
    const inotify = Number(said.find((line) => line.startsWith('inotify: '))?.slice('inotify: '.length));
    const hostQuota = Number(readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8'));
    expect(inotify, 'inotify instances a build may hold').to.be.above(0).and.at.most(Math.max(8, Math.floor(hostQuota / 4)));
    expect(said).to.include('keys listed: 0');
    for (const [name, host] of [['max_inotify_watches', 'inotify/max_user_watches'], ['max_fanotify_groups', 'fanotify/max_user_groups'], ['max_fanotify_marks', 'fanotify/max_user_marks']]) {
      if (!existsSync(`/proc/sys/fs/${host}`)) continue;
      const inside = Number(said.find((line) => line.startsWith(`${name}: `))?.split(': ')[1]);
      expect(inside, name).to.be.at.most(Math.max(1024, Math.floor(Number(readFileSync(`/proc/sys/fs/${host}`, 'utf8')) / 4)));
    }
    expect(said).to.include('hostname: localhost');
    expect(said).to.include('bootstrap: blocked');
    // The log is the app's readers' to see: server folders show by name.
    expect(result.stdout).to.not.include(world.dir);
    expect(said.some((line) => /^bootstrapped into <workdir>\/probe-1-\w+\/volume\/image$/.test(line)), said.join('\n')).to.equal(true);
    expect((await server.ssh(admin, ['whoami'])).stdout.trim(), 'the server goes on').to.equal('admin (admin)');
  });

  it('builder.network: none leaves a build nothing but its own loopback', async () => {
    await server.stop();
    world.update({ builder: { network: 'none' } });
    server = new TestServer(world);
    await server.start({ host: '0.0.0.0' });
    const app = await world.app('offline');
    const result = await buildWith(app, 'offline', [attempt('outbound', `bash -c 'echo > /dev/tcp/1.1.1.1/80'`), attempt('dns', `perl -MSocket -e 'inet_aton("deb.debian.org") or die'`)].join('\n'));
    expect(result.exitCode, result.stdout + result.stderr).to.equal(0);
    const said = result.lines.map((line) => line.trim());
    expect(said).to.include('blocked outbound');
    expect(said).to.include('blocked dns');
  });

  it('a server killed mid-build leaves a volume, a namespace and a cgroup that its next start removes', async () => {
    const app = await world.app('crash');
    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'echo started; sleep 60' } } }) });
    const building = server.ssh(admin, ['build', 'crash']);
    const workdir = join(world.dir, 'state', 'work');
    // Until the main action runs.
    for (let i = 0; i < 200; i++) {
      if (String((await execa('pgrep', ['-fx', 'sleep 60'], { reject: false })).stdout).trim()) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    process.kill(server.pid as number, 'SIGKILL');
    await building;
    await server.exited();
    const mounts = () => readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((line) => line.split(' ')[1]?.startsWith(workdir));
    expect(mounts().length, 'the volume and the namespace are still mounted').to.be.at.least(2);
    expect(cgroupsLeft(join(world.dir, 'state')).length).to.be.at.least(1);
    server = new TestServer(world);
    await server.start({ host: '0.0.0.0' });
    expect(mounts()).to.deep.equal([]);
    expect(cgroupsLeft(join(world.dir, 'state'))).to.deep.equal([]);
    expect(String((await execa('pgrep', ['-f', 'slirp4netns.*crash-'], { reject: false })).stdout)).to.equal('');
    const [record] = JSON.parse((await server.ssh(admin, ['builds', 'crash', '--json'])).stdout) as { status: string }[];
    expect(record?.status).to.equal('failed');
  });

  it('packing the tree counts against the build too: a tree of hard links that would take tar past the memory limit fails the build', async () => {
    // Enough inodes for 120,000 files; tar keeps each hard-linked file's ~3.8 KB path in memory (~450 MB).
    world.update({ builder: { limits: { disk: 4096 } } });
    const app = await world.app('links');
    const perl = [
      'my $d = "."; for my $i (1 .. 15) { $d .= "/" . ("d" x 250); mkdir $d or die "mkdir: $!" }',
      'for my $i (1 .. 120000) { my $f = "$d/f$i"; open(my $h, ">", $f) or die "open: $!"; close $h; link($f, "$f.l") or die "link: $!" }',
      'print "made\\n"',
    ].join('; ');
    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: `perl -e '${perl}'` } } }) });
    const result = await world.cli('build', 'links');
    expect(result.exitCode, result.stdout.split('\n').slice(-15).join('\n')).to.equal(1);
    expect(result.stdout).to.include('made');
    expect(result.lines.filter(Boolean).at(-1)).to.match(/user error: the build ran out of memory: it may use 256 MiB/);
  });

  const LIMITS: { name: string; main: string; message: RegExp }[] = [
    {
      name: 'processes',
      // The fork bomb runs in a subshell whose failure the script ignores: the kernel's counter tells.
      main: "sh -c 'i=0; while [ $i -lt 3000 ]; do sleep 30 & i=$((i+1)); done' 2>/dev/null; echo survived; exit 0",
      message: /user error: the build reached its limit of 200 processes \(builder\.limits\.processes\)/,
    },
    {
      name: 'memory',
      main: `perl -e '$x = "x" x (6 * 1024 ** 3); print "allocated\\n"'; echo survived; exit 0`,
      message: /user error: the build ran out of memory: it may use 256 MiB, swap included \(builder\.limits\.memory\)/,
    },
    {
      name: 'disk',
      main: 'head -c 25G /dev/zero > big 2>/dev/null; echo survived; exit 0',
      message: /user error: the build filled its disk: it may use 512 MiB \(builder\.limits\.disk\)/,
    },
  ];

  for (const limit of LIMITS) {
    it(`a build past builder.limits.${limit.name} fails as a user error naming the limit, cleanly, and the next build succeeds`, async () => {
      const app = await world.app(limit.name);
      const failed = await buildWith(app, limit.name, limit.main);
      expect(failed.exitCode, failed.stdout + failed.stderr).to.equal(1);
      expect(failed.lines.at(-1)).to.match(limit.message);
      expect(JSON.parse((await server.ssh(admin, ['packages', limit.name, '--json'])).stdout)).to.deep.equal([]);
      expect(world.leftovers()).to.deep.equal([]);
      const next = await buildWith(app, limit.name, 'echo fine');
      expect(next.exitCode, next.stdout + next.stderr).to.equal(0);
      expect(next.lines.at(-1)).to.match(/is now current/);
    });
  }
});
