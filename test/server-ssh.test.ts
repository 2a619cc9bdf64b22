/**
 * Scenario tests: the real server on random ports, generated admin, user and
 * attacker keys, real `git push` and `ssh` (fixture image builds).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { type KeyPair, TestServer, makeKey } from './helpers/server.ts';
import { World, metadata } from './helpers/world.ts';

describe('server over SSH', function () {
  this.timeout(180_000);
  let world: World;
  let server: TestServer;
  let admin: KeyPair;
  let dev: KeyPair;
  let attacker: KeyPair;

  before(async () => {
    [admin, dev, attacker] = await Promise.all([makeKey('admin'), makeKey('dev'), makeKey('attacker')]);
  });

  beforeEach(async () => {
    world = new World();
    expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    expect((await world.cliWithInput(dev.publicKey, 'users', 'add', 'dev')).exitCode).to.equal(0);
    server = new TestServer(world);
    await server.start();
  });

  afterEach(async () => {
    expect(await server.tearDown()).to.deep.equal([]);
  });

  /** A local checkout with one commit of `files`, its remote set to the server. */
  async function checkout(app: string, files: Record<string, string>, key: KeyPair) {
    const dir = join(world.dir, 'clients', `${app}-${key.name}`);
    mkdirSync(dir, { recursive: true });
    const env = server.clientEnv(key);
    const git = (...args: string[]) => execa('git', args, { cwd: dir, env, reject: false, all: true });
    await git('init', '-q', '-b', 'main');
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), content);
    }
    await git('add', '-A');
    await git('commit', '-qm', 'first');
    await git('remote', 'add', 'upaas', server.url(app));
    return { dir, git };
  }

  it('offers AES ciphers only: an OpenSSH client gets AES (ssh2 would run its first choice, chacha20-poly1305, in JavaScript)', async () => {
    const known = join(world.dir, 'known_hosts');
    const verbose = await execa(
      'ssh',
      ['-v', '-i', admin.privateFile, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${known}`, '-o', 'BatchMode=yes', '-p', String(server.sshPort), 'git@127.0.0.1', 'whoami'],
      { reject: false },
    );
    expect(verbose.exitCode, String(verbose.stderr)).to.equal(0);
    expect(String(verbose.stderr)).to.match(/kex: server->client cipher: aes(128|192|256)-(gcm@openssh.com|ctr) /);
    const chacha = await execa(
      'ssh',
      ['-c', 'chacha20-poly1305@openssh.com', '-i', admin.privateFile, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${known}`, '-o', 'BatchMode=yes', '-p', String(server.sshPort), 'git@127.0.0.1', 'whoami'],
      { reject: false },
    );
    expect(chacha.exitCode).to.equal(255);
    expect(String(chacha.stderr)).to.match(/no matching cipher found/);
  });

  it('keeps no listener of a command once it has ended (the server outlives millions of them)', async () => {
    for (let i = 0; i < 15; i++) expect((await server.ssh(admin, ['whoami'])).exitCode).to.equal(0);
    expect(server.output.join('')).to.not.include('MaxListenersExceededWarning');
  });

  it('runs git gc --auto in a repo after a push to it, after the push has ended', async () => {
    expect((await server.ssh(admin, ['repos', 'create', 'tidy'])).exitCode).to.equal(0);
    const bare = join(world.dir, 'repos', 'tidy.git');
    // Each push keeps its pack, and a second pack is one too many for gc --auto.
    await execa('git', ['--git-dir', bare, 'config', 'receive.unpackLimit', '1']);
    await execa('git', ['--git-dir', bare, 'config', 'gc.autoPackLimit', '1']);
    const packs = async () => /^packs: ([0-9]+)$/m.exec(String((await execa('git', ['--git-dir', bare, 'count-objects', '-v'])).stdout))?.[1];
    const { git, dir } = await checkout('tidy', { 'a.txt': 'a\n' }, admin);
    expect((await git('push', 'upaas', 'HEAD:refs/heads/notes')).exitCode).to.equal(0);
    writeFileSync(join(dir, 'b.txt'), 'b\n');
    await git('add', '-A');
    await git('commit', '-qm', 'second');
    const pushed = await git('push', 'upaas', 'HEAD:refs/heads/notes');
    expect(pushed.exitCode, pushed.all).to.equal(0);
    let count = await packs();
    for (let i = 0; i < 100 && count !== '1'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      count = await packs();
    }
    expect(count, 'packs after the second push').to.equal('1');
  });

  /** Resolves when a running client prints `text`. */
  const lineArrives = (child: { all?: NodeJS.ReadableStream | null }, text: string) =>
    new Promise<void>((resolve) => {
      child.all?.on('data', (chunk: Buffer) => {
        if (String(chunk).includes(text)) resolve();
      });
    });

  const STATIC = { '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { after: 'echo built-by-push > marker' } } }) };

  it('a push builds and streams the output live; -o fresh builds fresh; another branch does not build', async () => {
    expect((await server.ssh(admin, ['repos', 'create', 'web'])).exitCode).to.equal(0);
    const slow = { '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'echo working; sleep 2' } } }) };
    const { git } = await checkout('web', slow, admin);
    const push = git('push', 'upaas', 'main');
    const arrivals: { line: string; at: number }[] = [];
    push.all?.on('data', (chunk: Buffer) => {
      for (const line of String(chunk).split('\n')) if (line.trim()) arrivals.push({ line, at: Date.now() });
    });
    const result = await push;
    const end = Date.now();
    expect(result.exitCode, String(result.all)).to.equal(0);
    const lines = arrivals.map((a) => a.line);
    expect(lines.some((l) => /^remote: -----> Build 1 of web/.test(l)), lines.join('\n')).to.equal(true);
    const last = lines.filter((l) => l.startsWith('remote: ')).pop() as string;
    expect(last).to.match(/^remote: -----> Package [0-9a-f]{64} \(.*\) is now current for web/);
    const first = arrivals.find((a) => a.line.includes('-----> Build 1'));
    expect((first?.at ?? end) < end - 500, 'the first line arrives well before the push ends').to.equal(true);

    await git('commit', '-q', '--allow-empty', '-m', 'again');
    const fresh = await git('push', '-o', 'fresh', '-o', 'colour=blue', 'upaas', 'main');
    expect(String(fresh.all)).to.include('unknown push option "colour=blue" ignored');
    expect(String(fresh.all)).to.include('(fresh)');
    const packages = JSON.parse((await server.ssh(admin, ['packages', 'web', '--json'])).stdout) as { fresh: boolean }[];
    expect(packages.map((p) => p.fresh)).to.deep.equal([true, true]);

    const branch = await git('push', 'upaas', 'main:feature');
    expect(String(branch.all)).to.include('refs/heads/feature stored; only main builds');
    const deleted = await git('push', 'upaas', '--delete', 'feature');
    expect(String(deleted.all)).to.include('refs/heads/feature deleted; only main builds');
    expect(JSON.parse((await server.ssh(admin, ['packages', 'web', '--json'])).stdout)).to.have.length(2);
  });

  /** Resolves once `check` holds (polled), or fails after 10 s. */
  async function eventually(check: () => boolean, what: string): Promise<void> {
    for (const started = Date.now(); !check(); await new Promise((resolve) => setTimeout(resolve, 50))) {
      if (Date.now() - started > 10_000) throw new Error(`never happened: ${what}`);
    }
  }

  it('acknowledges a push before its build starts, through a private session folder made ahead', async () => {
    expect((await server.ssh(admin, ['repos', 'create', 'ack'])).exitCode).to.equal(0);
    const { git } = await checkout('ack', STATIC, admin);
    const hooks = join(world.dir, 'state', 'hooks');
    const ready = (): string[] => readdirSync(hooks).filter((name) => readdirSync(join(hooks, name)).length === 2);
    await eventually(() => ready().length === 1, 'a session folder made at start');
    const [made] = ready();
    const push = await git('push', 'upaas', 'main');
    expect(push.exitCode, String(push.all)).to.equal(0);
    const head = String((await git('rev-parse', 'HEAD')).stdout);
    const steps = String(push.all)
      .split('\n')
      .filter((line) => line.startsWith('remote: -----> '))
      .map((line) => line.trimEnd());
    expect(steps.slice(0, 2)).to.deep.equal([`remote: -----> Received main at ${head.slice(0, 12)}`, 'remote: -----> Build 1 of ack']);
    // The push took the folder made ahead and removed it; the next one is ready.
    await eventually(() => ready().length === 1 && ready()[0] !== made, 'the next session folder');
    expect(readdirSync(hooks)).to.deep.equal(ready());
    const folder = join(hooks, ready()[0] as string);
    expect(statSync(folder).mode & 0o777).to.equal(0o700);
    for (const fifo of ['in', 'out']) {
      const stat = statSync(join(folder, fifo));
      expect(stat.isFIFO() && (stat.mode & 0o777) === 0o600, fifo).to.equal(true);
    }
  });

  it('starts receive-pack from a process started ahead; a spare that died is replaced, not used', async () => {
    /** The server's waiting spares: its `sh` children that wait for a repo line. */
    const spares = () =>
      readdirSync('/proc')
        .filter((pid) => /^[0-9]+$/.test(pid))
        .filter((pid) => {
          try {
            const ppid = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1];
            return Number(ppid) === server.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('read -r repo');
          } catch {
            return false;
          }
        });
    expect((await server.ssh(admin, ['repos', 'create', 'spare'])).exitCode).to.equal(0);
    const [first, ...others] = spares();
    expect(others, 'one spare').to.deep.equal([]);
    const slow = { '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'echo slow-start; sleep 2' } } }) };
    const { git } = await checkout('spare', slow, admin);
    const push = git('push', 'upaas', 'main');
    await lineArrives(push, 'slow-start');
    expect(readFileSync(`/proc/${first}/cmdline`, 'utf8').split('\0'), 'the spare became this push\'s receive-pack').to.include('receive-pack');
    expect(String((await push).all)).to.match(/is now current for spare/);
    const [second] = spares();
    expect(second, 'a new spare after the push').to.be.a('string').and.not.equal(first);
    process.kill(Number(second), 'SIGKILL');
    // Gone from /proc once the server has reaped it.
    while (existsSync(`/proc/${second}`)) await new Promise((resolve) => setTimeout(resolve, 20));
    await git('commit', '-q', '--allow-empty', '-m', 'again');
    const again = await git('push', 'upaas', 'main');
    expect(String(again.all), 'a push after the spare died').to.match(/is now current for spare/);
    const [third] = spares();
    expect(third).to.be.a('string').and.not.equal(second);
  });

  it('what a pusher names cannot end the hook request early or pass for a line of it', async () => {
    expect((await server.ssh(admin, ['repos', 'create', 'raw'])).exitCode).to.equal(0);
    const { git } = await checkout('raw', STATIC, admin);
    expect((await git('push', 'upaas', 'main')).exitCode).to.equal(0);
    const head = String((await git('rev-parse', 'HEAD')).stdout);
    // A line that ends in "end" is not the end of the request.
    const named = await git('push', '-o', 'backend', 'upaas', 'main:frontend');
    expect(named.exitCode, String(named.all)).to.equal(0);
    expect(String(named.all)).to.include('unknown push option "backend" ignored');
    expect(String(named.all)).to.include('refs/heads/frontend stored; only main builds');
    // git's client refuses such options, so speak receive-pack by hand: create
    // refs/heads/other at main's commit, with an option that carries a forged
    // ref line for main (the objects are there: the pack is empty).
    const zero = '0'.repeat(40);
    const pkt = (text: string) => `${(Buffer.byteLength(text) + 4).toString(16).padStart(4, '0')}${text}`;
    const empty = Buffer.concat([Buffer.from('PACK'), Buffer.from([0, 0, 0, 2, 0, 0, 0, 0])]);
    const input = Buffer.concat([
      Buffer.from(pkt(`${zero} ${head} refs/heads/other\0report-status side-band-64k push-options\n`) + '0000'),
      Buffer.from(pkt(`fresh\nref ${zero} ${head} refs/heads/main`) + '0000'),
      empty,
      createHash('sha1').update(empty).digest(),
    ]);
    const known = join(world.dir, 'known_hosts');
    const options = ['IdentitiesOnly=yes', 'StrictHostKeyChecking=no', `UserKnownHostsFile=${known}`, 'LogLevel=ERROR', 'BatchMode=yes'];
    const raw = await execa('ssh', ['-i', admin.privateFile, ...options.flatMap((o) => ['-o', o]), '-p', String(server.sshPort), 'git@127.0.0.1', "git-receive-pack '/raw.git'"], {
      input,
      reject: false,
    });
    const said = String(raw.stdout);
    expect(said, said).to.include('ok refs/heads/other');
    expect(said).to.include('-----> refs/heads/other stored; only main builds');
    expect(said).to.include('-----> warning: 1 push option(s) with a line break ignored');
    expect(said).to.not.include('Build 2');
    expect(JSON.parse((await server.ssh(admin, ['builds', 'raw', '--json'])).stdout)).to.have.length(1);
  });

  it('enforces access: write to push, read to clone; unknown keys and non-allowlisted commands are refused', async () => {
    expect((await server.ssh(admin, ['repos', 'create', 'shop'])).exitCode).to.equal(0);
    const { git } = await checkout('shop', STATIC, dev);
    let push = await git('push', 'upaas', 'main');
    expect(push.exitCode).to.not.equal(0);
    expect(String(push.all)).to.include('repository shop does not exist or you have no access to it');
    const clone = await execa('git', ['clone', server.url('shop'), join(world.dir, 'clone1')], { env: server.clientEnv(dev), reject: false, all: true });
    expect(clone.exitCode).to.not.equal(0);
    expect(String(clone.all)).to.include('repository shop does not exist or you have no access to it');

    expect((await server.ssh(admin, ['repos', 'grant', 'shop', 'dev', 'read'])).exitCode).to.equal(0);
    const cloned = await execa('git', ['clone', server.url('shop'), join(world.dir, 'clone2')], { env: server.clientEnv(dev), reject: false, all: true });
    expect(cloned.exitCode, String(cloned.all)).to.equal(0);
    push = await git('push', 'upaas', 'main');
    expect(String(push.all)).to.include('you may read repository shop but not write to it');

    expect((await server.ssh(admin, ['repos', 'grant', 'shop', 'dev', 'write'])).exitCode).to.equal(0);
    push = await git('push', 'upaas', 'main');
    expect(push.exitCode, String(push.all)).to.equal(0);
    expect(String(push.all)).to.include('is now current for shop');

    const stranger = await server.ssh(attacker, ['help']);
    expect(stranger.exitCode).to.equal(255);
    expect(stranger.stderr).to.include('Permission denied');
    const strangerPush = await execa('git', ['ls-remote', server.url('shop')], { env: server.clientEnv(attacker), reject: false, all: true });
    expect(strangerPush.exitCode).to.not.equal(0);

    for (const command of [['sh', '-c', 'id'], ['git-upload-pack', '../../etc'], ['git-receive-pack', '/shop.git;id'], ['users', 'list']]) {
      const r = await server.ssh(dev, command);
      expect(r.exitCode, command.join(' ')).to.not.equal(0);
    }
    expect((await server.ssh(dev, ['users', 'list'])).stderr).to.include('only admins may run this command');
    expect((await server.ssh(dev, ['whoami'])).stdout).to.equal('dev');
    expect((await server.ssh(dev, ['build', 'shop'])).exitCode, 'write access allows a build').to.equal(0);
  });

  it('a second push while building waits and coalesces; two apps build in parallel', async () => {
    for (const app of ['one', 'two']) expect((await server.ssh(admin, ['repos', 'create', app])).exitCode).to.equal(0);
    const slow = { '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'sleep 4' } } }) };
    const one = await checkout('one', slow, admin);
    const two = await checkout('two', slow, admin);

    const started = Date.now();
    const first = one.git('push', 'upaas', 'main');
    const other = two.git('push', 'upaas', 'main');
    await new Promise((r) => setTimeout(r, 1500));
    await one.git('commit', '-q', '--allow-empty', '-m', 'second');
    const second = one.git('push', 'upaas', 'main');
    await new Promise((r) => setTimeout(r, 300));
    await one.git('commit', '-q', '--allow-empty', '-m', 'third');
    const third = one.git('push', '-o', 'fresh', 'upaas', 'main');
    const results = await Promise.all([first, other, second, third]);
    for (const r of results) expect(r.exitCode, String(r.all)).to.equal(0);
    expect(String(results[2]?.all)).to.match(/waiting: build \d+ of one is running/);
    const builds = JSON.parse((await server.ssh(admin, ['builds', 'one', '--json'])).stdout) as { fresh: boolean }[];
    expect(builds, 'second and third push coalesce into one build').to.have.length(2);
    expect(builds[0]?.fresh, 'fresh in any waiting push makes it fresh').to.equal(true);
    expect(String(results[2]?.all)).to.include('(fresh)');
    const head = (await one.git('rev-parse', 'HEAD')).stdout;
    const [pkg] = JSON.parse((await server.ssh(admin, ['packages', 'one', '--json'])).stdout) as { revision: string }[];
    expect(pkg?.revision, 'the newest revision is built').to.equal(String(head));
    // one and two ran side by side (builder.workers = 2): their first builds overlap in time.
    type Build = { startedAt: string; finishedAt: string };
    const span = async (app: string) => {
      const list = JSON.parse((await server.ssh(admin, ['builds', app, '--json'])).stdout) as Build[];
      const first = list[list.length - 1] as Build;
      return [Date.parse(first.startedAt), Date.parse(first.finishedAt)] as const;
    };
    const [oneStart, oneEnd] = await span('one');
    const [twoStart, twoEnd] = await span('two');
    expect(oneStart < twoEnd && twoStart < oneEnd, 'builds of two apps overlap').to.equal(true);
    expect(Date.now() - started).to.be.below(60_000);
  });

  it('a build goes on when the pusher disconnects, mid-build or right after the acknowledgement, and `log` follows it to the end', async () => {
    const slow = { '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'echo slow-start; sleep 3; echo slow-end' } } }) };
    for (const [app, seen] of [['bg', 'slow-start'], ['gone', '-----> Received main at']] as const) {
      expect((await server.ssh(admin, ['repos', 'create', app])).exitCode).to.equal(0);
      const { git } = await checkout(app, slow, admin);
      const push = git('push', 'upaas', 'main');
      await lineArrives(push, seen);
      push.kill('SIGKILL');
      await push;
      const followed = await server.ssh(admin, ['log', app]);
      expect(followed.exitCode, `${app}: ${followed.stderr}`).to.equal(0);
      expect(followed.stdout).to.include('slow-end');
      expect(followed.stdout.trim().split('\n').pop()).to.match(new RegExp(`is now current for ${app}$`));
    }
  });

  /** Pushes APP whose main action starts with `echo slow-start`, sends SIGTERM once it has, waits for push and server to end. */
  async function stopDuringBuild(app: string, main: string): Promise<string> {
    expect((await server.ssh(admin, ['repos', 'create', app])).exitCode).to.equal(0);
    const { git } = await checkout(app, { '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main } } }) }, admin);
    const push = git('push', 'upaas', 'main');
    await lineArrives(push, 'slow-start');
    process.kill(server.pid as number, 'SIGTERM');
    const output = String((await push).all);
    expect(await server.exited(), 'exits by itself, cleanly').to.equal(0);
    return output;
  }

  /** A new world with config `overrides` and the admin, and a server on it (afterEach tears it down). */
  async function restartWith(overrides: Record<string, unknown>): Promise<void> {
    await server.stop();
    world.remove();
    world = new World(overrides);
    expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    server = new TestServer(world);
    await server.start();
  }

  it('SIGTERM lets a running build finish, then the server exits', async () => {
    const output = await stopDuringBuild('stopper', 'echo slow-start; sleep 3');
    expect(output, output + server.output.join('')).to.match(/is now current for stopper/);
    expect(server.output.join('')).to.include('stopping; running builds and commands get 120s to finish');
    const refused = await server.ssh(admin, ['whoami']);
    expect(refused.exitCode, 'no longer serving').to.equal(255);
    server = new TestServer(world);
    await server.start();
  });

  it('SIGTERM past builder.grace cancels a running build cleanly: the pusher is told, nothing is kept, the server exits', async () => {
    await restartWith({ builder: { grace: 1 } });
    const output = await stopDuringBuild('overrun', 'echo slow-start; sleep 600');
    expect(output).to.include('remote: !     system error: the build was cancelled (the server is stopping or the caller went away)');
    expect(output).not.to.include('is now current');
    expect(server.output.join('')).to.include('stopping; running builds and commands get 1s to finish');
    const builds = JSON.parse((await world.cli('builds', 'overrun', '--json')).stdout) as { status: string; errorMessage: string }[];
    expect(builds.map((b) => [b.status, b.errorMessage])).to.deep.equal([['failed', 'the build was cancelled (the server is stopping or the caller went away)']]);
    expect(await world.packages('overrun')).to.deep.equal([]);
    server = new TestServer(world);
    await server.start();
  });

  it('build output reaches the pusher as data: an app cannot clear lines or forge a step line on their terminal', async () => {
    expect((await server.ssh(admin, ['repos', 'create', 'forger'])).exitCode).to.equal(0);
    const forge = String.raw`printf 'real error\033[1A\033[2K\r-----> Package fake is now current\n\033]0;title\007\033[32mgreen\n'`;
    const { git } = await checkout('forger', { '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: forge } } }) }, admin);
    const output = String((await git('push', 'upaas', 'main')).all);
    expect(output).to.include('remote:        -----> Package fake is now current');
    expect(output).to.include('remote:        ^[]0;title^G\x1b[32mgreen\x1b[m');
    expect(output, 'no escape but colours, no other control character').not.to.match(/\x1b(?!\[[0-9;:]*m)|[\x00-\x08\x0b-\x1a\x1c-\x1f]/);
  });

  it('refuses hostile repo names on every path, and leaves the server up', async () => {
    expect((await server.ssh(admin, ['repos', 'create', 'real'])).exitCode).to.equal(0);
    const hostile = ['../real', '/etc/passwd', '-rf', 'a/b', 'real.git/../../x', 'x;id', '$(id)', '`id`', 'x y', '.hidden', '..'];
    for (const name of hostile) {
      for (const service of ['git-upload-pack', 'git-receive-pack']) {
        const r = await server.ssh(admin, [`${service} '${name.replaceAll("'", '')}'`]);
        expect(r.exitCode, `${service} ${name}`).to.not.equal(0);
        expect(r.stderr, `${service} ${name}`).to.match(/invalid app name|no repository named|does not exist/);
      }
      const created = await server.ssh(admin, ['repos', 'create', `'${name}'`]);
      expect(created.exitCode, `repos create ${name}`).to.not.equal(0);
    }
    const listing = JSON.parse((await server.ssh(admin, ['repos', 'list', '--json'])).stdout) as { name: string }[];
    expect(listing.map((r) => r.name)).to.deep.equal(['real']);
    expect((await server.ssh(admin, ['git-upload-pack', "'/real.git'", 'extra'])).exitCode).to.equal(64);
    expect((await server.ssh(admin, ['whoami'])).exitCode, 'still serving').to.equal(0);
  });

  it('takes its first admins from upaas.yml', async () => {
    await restartWith({ admins: [{ name: 'boss', key: attacker.publicKey }] });
    const who = await server.ssh(attacker, ['whoami']);
    expect(who.stdout).to.equal('boss (admin)');
    expect((await server.ssh(attacker, ['users', 'list'])).exitCode).to.equal(0);
  });
});
