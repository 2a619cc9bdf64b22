/**
 * `run APP [--package ID] -- COMMAND...` on the fixture image, through the
 * real CLI and over SSH with the real server: output and exit status pass
 * through, the app's environment, nothing kept, the time limit, access, and
 * nothing left behind (mounts, cgroups, temp folders, processes).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { detectLayout, leftoverCgroups, parentName } from '../src/sandbox/cgroups.ts';
import { type KeyPair, TestServer, makeKey } from './helpers/server.ts';
import { type AppRepo, PROJECT, type PackageJson, World, metadata } from './helpers/world.ts';

const APP_METADATA = { interpreter: { type: 'static' }, env: { FROM_METADATA: 'meta' } };

/** What a world left: the World's own check, plus the cgroups of its server under their parent. */
async function leftovers(world: World): Promise<string[]> {
  const cgroups = await leftoverCgroups(detectLayout(), parentName(join(world.dir, 'state')));
  return [...world.leftovers(), ...[...cgroups.keys()].map((name) => `cgroup ${name}`)];
}

/** Resolves once `check` holds; throws after `seconds`. */
async function waitFor(check: () => boolean | Promise<boolean>, what: string, seconds = 60): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('run (fixture image)', function () {
  this.timeout(180_000);
  const name = 'runner';
  let world: World;
  let app: AppRepo;
  let older: PackageJson;
  let current: PackageJson;

  before(async () => {
    world = new World({ builder: { min_free: 0 } });
    app = await world.app(name);
    await app.commit({ '.upaas.yml': metadata(APP_METADATA), 'version.txt': 'one\n' }, 'one');
    expect((await world.cli('build', name)).exitCode).to.equal(0);
    await app.commit({ 'version.txt': 'two\n' }, 'two');
    expect((await world.cli('build', name)).exitCode).to.equal(0);
    [current, older] = (await world.packages(name)) as [PackageJson, PackageJson];
    // Set after the builds: the command reads them when it runs.
    expect((await world.cli('config', 'set', name, 'FROM_CONFIG=config value')).exitCode).to.equal(0);
  });

  afterEach(async () => {
    expect(await leftovers(world), 'left behind by the run').to.deep.equal([]);
  });

  after(() => world?.remove());

  it('prints what the command prints and exits with its status', async () => {
    const hi = await world.cli('run', name, '--', 'echo', 'hi');
    expect(hi, hi.stderr).to.include({ exitCode: 0, stdout: 'hi', stderr: '' });
    const seven = await world.cli('run', name, '--', 'sh', '-c', 'exit 7');
    expect(seven.exitCode, seven.stderr).to.equal(7);
    const both = await world.cli('run', name, '--', 'sh', '-c', 'echo out; echo err >&2; exit 3');
    expect(both).to.include({ exitCode: 3, stdout: 'out', stderr: 'err' });
    const missing = await world.cli('run', name, '--', 'no-such-program');
    expect(missing.exitCode).to.equal(127);
    expect(missing.stderr).to.include('no-such-program');
  });

  it('hands the words after -- over as they are, options included, with no shell', async () => {
    const result = await world.cli('run', name, '--', 'printf', '%s|', 'a b', '--package', '-x', '--', '$HOME', '*');
    expect(result, result.stderr).to.include({ exitCode: 0, stdout: 'a b|--package|-x|--|$HOME|*|' });
    const usage = await world.cli('run', name);
    expect(usage.exitCode).to.equal(64);
    expect(usage.stderr).to.include('missing -- COMMAND');
  });

  it('streams standard output as raw bytes, all of it', async () => {
    const big = await world.cli('run', name, '--', 'seq', '1', '200000');
    expect(big.exitCode, big.stderr).to.equal(0);
    expect(big.lines).to.have.length(200_000);
    expect(big.lines.at(-1)).to.equal('200000');
    const raw = await execa('node', [join(PROJECT, 'bin/upaas.js'), '-c', world.configFile, 'run', name, '--', 'printf', '\\001\\033[31m\\377'], {
      encoding: 'buffer',
      reject: false,
    });
    expect(raw.exitCode).to.equal(0);
    expect(Buffer.from(raw.stdout)).to.deep.equal(Buffer.from([1, 0x1b, 0x5b, 0x33, 0x31, 0x6d, 0xff]));
  });

  it("gives the command the app's environment, in the app's home", async () => {
    const result = await world.cli('run', name, '--', 'env');
    expect(result.exitCode, result.stderr).to.equal(0);
    expect(result.lines).to.include.members([
      'FROM_CONFIG=config value',
      'FROM_METADATA=meta',
      'HOME=/home/app',
      `UPAAS_APP=${name}`,
      `UPAAS_PACKAGE_ID=${current.id}`,
      `UPAAS_REVISION=${current.revision}`,
      'UPAAS_INTERPRETER=static',
    ]);
    expect(result.stdout).not.to.include('UPAAS_FRESH_PACKAGE');
    const pwd = await world.cli('run', name, '--', 'sh', '-c', 'pwd; cat version.txt');
    expect(pwd.stdout).to.equal('/home/app\ntwo');
  });

  it('keeps nothing the command changes, and leaves the package as it was', async () => {
    const before = await world.packages(name);
    const file = world.packageFile(name, current);
    expect(sha256(file)).to.equal(current.id);
    const change = await world.cli('run', name, '--', 'sh', '-c', 'echo scratch > /home/app/scratch && rm /home/app/version.txt && echo done');
    expect(change, change.stderr).to.include({ exitCode: 0, stdout: 'done' });
    const look = await world.cli('run', name, '--', 'sh', '-c', 'test -e /home/app/scratch && echo kept; cat /home/app/version.txt');
    expect(look, look.stderr).to.include({ exitCode: 0, stdout: 'two' });
    expect(await world.packages(name)).to.deep.equal(before);
    expect(sha256(file), 'the stored file').to.equal(current.id);
  });

  it('--package runs an older package, by a prefix of its id; a bad or unknown id is refused', async () => {
    const old = await world.cli('run', name, '--package', older.id.slice(0, 10), '--', 'sh', '-c', 'cat version.txt; echo "$UPAAS_PACKAGE_ID"');
    expect(old, old.stderr).to.include({ exitCode: 0, stdout: `one\n${older.id}` });
    const unknown = await world.cli('run', name, '--package', '0000000', '--', 'true');
    expect(unknown).to.include({ exitCode: 1, stderr: `upaas run: ${name} has no package 0000000` });
    const bad = await world.cli('run', name, '--package', 'abc', '--', 'true');
    expect(bad.exitCode).to.equal(1);
    expect(bad.stderr).to.include('expected a package id or a unique prefix of at least 7 hex characters');
  });

  it('refuses a package whose file is deleted, and an app with no package', async () => {
    expect((await world.cli('packages', 'delete', name, older.id)).exitCode).to.equal(0);
    const gone = await world.cli('run', name, '--package', older.id, '--', 'true');
    expect(gone.exitCode).to.equal(1);
    expect(gone.stderr).to.match(/^upaas run: the file of package [0-9a-f]{12} of runner was deleted/);
    await world.app('empty');
    const none = await world.cli('run', 'empty', '--', 'true');
    expect(none).to.include({ exitCode: 1, stderr: 'upaas run: empty has no current package' });
  });

  it('stops the command at commands.timelimit, with a clear message', async () => {
    world.update({ commands: { timelimit: 2 } });
    try {
      const started = Date.now();
      const result = await world.cli('run', name, '--', 'sh', '-c', 'echo started; sleep 30; echo never');
      const seconds = (Date.now() - started) / 1000;
      expect(result.exitCode).to.equal(124);
      expect(result.stdout).to.equal('started');
      expect(result.stderr).to.include('upaas run: the command was stopped: it ran longer than commands.timelimit (2 s)');
      expect(seconds, 'stopped in about 2 s').to.be.below(10);
    } finally {
      world.update({ commands: { timelimit: 60 } });
    }
  });

  it('undoes everything when the caller goes away mid-run', async () => {
    const child = execa('node', [join(PROJECT, 'bin/upaas.js'), '-c', world.configFile, 'run', name, '--', 'sleep', '300'], { reject: false });
    await waitFor(() => world.leftovers().some((l) => l.includes('sleep 300')), 'the command to start');
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode).to.equal(130);
  });
});

describe('run over SSH (real server)', function () {
  this.timeout(180_000);
  let world: World;
  let server: TestServer;
  let admin: KeyPair;
  let reader: KeyPair;
  let stranger: KeyPair;

  before(async () => {
    [admin, reader, stranger] = await Promise.all([makeKey('admin'), makeKey('reader'), makeKey('stranger')]);
    world = new World({ builder: { min_free: 0 } });
    for (const [key, user, ...extra] of [[admin, 'admin', '--admin'], [reader, 'reader'], [stranger, 'stranger']] as const) {
      expect((await world.cliWithInput(key.publicKey, 'users', 'add', user, ...extra)).exitCode).to.equal(0);
    }
    const app = await world.app('shop');
    await app.commit({ '.upaas.yml': metadata(APP_METADATA) });
    expect((await world.cli('build', 'shop')).exitCode).to.equal(0);
    expect((await world.cli('repos', 'grant', 'shop', 'reader', 'read')).exitCode).to.equal(0);
    server = new TestServer(world);
    await server.start();
  });

  afterEach(async () => {
    expect(await leftovers(world), 'left behind by the run').to.deep.equal([]);
  });

  after(async () => {
    if (server) expect(await server.tearDown()).to.deep.equal([]);
  });

  it('passes the output and the exit status through ssh', async () => {
    // ssh joins its words with spaces; the server splits them again at quotes only.
    const result = await server.ssh(admin, ['run', 'shop', '--', 'sh', '-c', `'echo "out $UPAAS_APP"; echo err >&2; exit 5'`]);
    expect(result).to.include({ exitCode: 5, stdout: 'out shop', stderr: 'err' });
    const hi = await server.ssh(admin, ['run', 'shop', '--', 'echo', 'hi']);
    expect(hi).to.include({ exitCode: 0, stdout: 'hi', stderr: '' });
    const input = await server.ssh(admin, ['run', 'shop', '--', 'cat'], 'typed input\n');
    expect(input, 'standard input is /dev/null').to.include({ exitCode: 0, stdout: '', stderr: '' });
  });

  it('undoes everything when the ssh client goes away mid-run', async () => {
    const known = join(world.dir, 'known_hosts');
    const client = execa(
      'ssh',
      ['-i', admin.privateFile, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${known}`, '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-p', String(server.sshPort), 'git@127.0.0.1', 'run', 'shop', '--', 'sleep', '300'],
      { reject: false },
    );
    await waitFor(() => world.leftovers().some((l) => l.includes('sleep 300')), 'the command to start');
    client.kill('SIGKILL');
    await client;
    await waitFor(async () => (await leftovers(world)).length === 0, 'the run to be undone', 15);
  });

  it('runs as many commands at once as builder.workers allows, and refuses more', async () => {
    const known = join(world.dir, 'known_hosts');
    const ssh = (...words: string[]) =>
      execa('ssh', ['-i', admin.privateFile, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${known}`, '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-p', String(server.sshPort), 'git@127.0.0.1', ...words], { reject: false });
    const long = [ssh('run', 'shop', '--', 'sleep', '301'), ssh('run', 'shop', '--', 'sleep', '302')];
    await waitFor(() => ['sleep 301', 'sleep 302'].every((what) => world.leftovers().some((l) => l.includes(what))), 'both commands to start');
    const third = await server.ssh(admin, ['run', 'shop', '--', 'echo', 'hi']);
    expect([third.exitCode, third.stderr]).to.deep.equal([1, 'upaas run: 2 one-off commands are running, as many as builder.workers (2) allows at once; try again when one ends']);
    for (const client of long) client.kill('SIGKILL');
    await Promise.all(long);
    await waitFor(async () => (await leftovers(world)).length === 0, 'the runs to be undone', 15);
    expect((await server.ssh(admin, ['run', 'shop', '--', 'echo', 'hi'])).stdout).to.equal('hi');
  });

  it('holds a bounded amount of a stderr flood, for a client that reads both streams or only stderr', async () => {
    const known = join(world.dir, 'known_hosts');
    const ssh = `ssh -i ${admin.privateFile} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=${known} -o LogLevel=ERROR -o BatchMode=yes -p ${server.sshPort} git@127.0.0.1`;
    const flood = `run shop -- sh -c "'yes >&2 & head -c 20000000 /dev/zero; wait'"`;
    const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    // Both read as fast as they come; stdout never read (it fills the channel's window). The client hangs up after 6 s.
    for (const client of [`timeout 6 ${ssh} ${flood} >/dev/null 2>&1`, `timeout 6 ${ssh} ${flood} 2>/dev/null | sleep 7`]) {
      let peak = rss();
      const sampler = setInterval(() => (peak = Math.max(peak, rss())), 50);
      await execa('sh', ['-c', client], { reject: false });
      clearInterval(sampler);
      expect(peak, 'server RSS in MB').to.be.below(250);
      await waitFor(async () => (await leftovers(world)).length === 0, 'the run to be undone', 15);
    }
  });

  it('refuses a reader, and says the same words for an app that does not exist as for one the caller may not read', async () => {
    const read = await server.ssh(reader, ['run', 'shop', '--', 'echo', 'hi']);
    expect(read).to.include({ exitCode: 1, stdout: '' });
    expect(read.stderr).to.include('you may read repository shop but not write to it');
    const hidden = await server.ssh(stranger, ['run', 'shop', '--', 'echo', 'hi']);
    const missing = await server.ssh(stranger, ['run', 'nope', '--', 'echo', 'hi']);
    expect(hidden.exitCode).to.equal(1);
    expect(hidden.stderr).to.equal('upaas run: repository shop does not exist or you have no access to it');
    expect(missing.stderr).to.equal(hidden.stderr.replace('shop', 'nope'));
  });
});

describe('run at server stop (real server)', function () {
  this.timeout(120_000);

  it('is given builder.grace, then stopped, and the server exits only once it is undone', async () => {
    const admin = await makeKey('admin');
    const world = new World({ builder: { min_free: 0, grace: 1 } });
    try {
      expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
      const app = await world.app('shop');
      await app.commit({ '.upaas.yml': metadata(APP_METADATA) });
      expect((await world.cli('build', 'shop')).exitCode).to.equal(0);
      const server = new TestServer(world);
      await server.start();
      const running = server.ssh(admin, ['run', 'shop', '--', 'sleep', '300']);
      await waitFor(() => world.leftovers().some((l) => l.includes('sleep 300')), 'the command to start');
      const started = Date.now();
      await server.stop();
      expect(Date.now() - started, 'the grace, not the command').to.be.below(15_000);
      expect(server.output.join('')).to.include('running builds and commands get 1s to finish');
      expect((await running).exitCode).to.not.equal(0);
      expect(await leftovers(world), 'left behind by the run').to.deep.equal([]);
    } finally {
      world.remove();
    }
  });
});
