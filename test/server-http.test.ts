/** Scenario tests over HTTP: tokens, every request authenticated, hostile requests, protocol v2. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { type KeyPair, TestServer, makeKey } from './helpers/server.ts';
import { World, metadata } from './helpers/world.ts';

describe('server over HTTP', function () {
  this.timeout(120_000);
  let world: World;
  let server: TestServer;
  let admin: KeyPair;
  let token: string;
  let devToken: string;

  before(async () => {
    admin = await makeKey('admin');
  });

  beforeEach(async () => {
    world = new World();
    expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    expect((await world.cli('users', 'add', 'dev')).exitCode).to.equal(0);
    token = (await world.cli('tokens', 'create', '--user', 'admin')).stdout.split('\n').pop() as string;
    devToken = (await world.cli('tokens', 'create', '--user', 'dev')).stdout.split('\n').pop() as string;
    expect((await world.cli('repos', 'create', 'site')).exitCode).to.equal(0);
    server = new TestServer(world);
    await server.start();
  });

  afterEach(async () => {
    expect(await server.tearDown()).to.deep.equal([]);
  });

  async function checkout() {
    const dir = join(world.dir, 'client');
    mkdirSync(dir, { recursive: true });
    const env = server.clientEnv(admin);
    const git = (...args: string[]) => execa('git', args, { cwd: dir, env, reject: false, all: true });
    await git('init', '-q', '-b', 'main');
    writeFileSync(join(dir, '.upaas.yml'), metadata({ interpreter: { type: 'static' } }));
    await git('add', '-A');
    await git('commit', '-qm', 'first');
    return git;
  }

  it('a push with user and token builds with live output; a wrong token is refused', async () => {
    const git = await checkout();
    const push = await git('push', server.httpUrl('site', 'admin', token), 'main');
    expect(push.exitCode, String(push.all)).to.equal(0);
    expect(String(push.all)).to.match(/remote: -----> Package [0-9a-f]{64} .* is now current for site/);
    const head = String((await git('rev-parse', 'HEAD')).stdout);
    const steps = String(push.all)
      .split('\n')
      .filter((line) => line.startsWith('remote: -----> '))
      .map((line) => line.trimEnd());
    expect(steps.slice(0, 2), 'acknowledged before the build starts').to.deep.equal([`remote: -----> Received main at ${head.slice(0, 12)}`, 'remote: -----> Build 1 of site']);
    const bad = await git('push', server.httpUrl('site', 'admin', `${token}x`), 'main');
    expect(bad.exitCode).to.not.equal(0);
    expect(String(bad.all)).to.match(/Authentication failed|401|could not read Username/i);
    const noRight = await execa('git', ['ls-remote', server.httpUrl('site', 'dev', devToken)], { reject: false, all: true, env: { GIT_TERMINAL_PROMPT: '0' } });
    expect(noRight.exitCode).to.not.equal(0);
    expect(String(noRight.all)).to.include('repository site does not exist or you have no access to it');
  });

  it('authenticates every request: an unauthenticated receive-pack POST changes nothing', async () => {
    const git = await checkout();
    expect((await git('push', server.httpUrl('site', 'admin', token), 'main')).exitCode).to.equal(0);
    const before = (await world.cli('repos', 'info', 'site', '--json')).stdout;
    const zero = '0'.repeat(40);
    const line = `${zero} ${'1'.repeat(40)} refs/heads/evil\0report-status\n`;
    const pkt = `${(line.length + 4).toString(16).padStart(4, '0')}${line}0000`;
    for (const path of ['/site.git/git-receive-pack', '/site.git/git-upload-pack', '/site.git/info/refs?service=git-receive-pack']) {
      const response = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, {
        method: path.includes('info/refs') ? 'GET' : 'POST',
        headers: { 'Content-Type': 'application/x-git-receive-pack-request' },
        body: path.includes('info/refs') ? undefined : pkt,
      });
      expect(response.status, path).to.equal(401);
    }
    const forged = await fetch(`http://127.0.0.1:${server.httpPort}/site.git/git-receive-pack`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from('admin:guess').toString('base64')}`, 'Content-Type': 'application/x-git-receive-pack-request' },
      body: pkt,
    });
    expect(forged.status).to.equal(401);
    expect((await world.cli('repos', 'info', 'site', '--json')).stdout).to.equal(before);
    const auth = { Authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` };
    for (const path of ['/site.git/HEAD', '/site.git/objects/info/packs', '/../etc/passwd', '/-x.git/info/refs?service=git-upload-pack', '/a%2Fb.git/info/refs?service=git-upload-pack']) {
      const response = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, { headers: auth });
      expect(response.status, path).to.equal(404);
    }
  });

  it('answers a push to refs/for/main (no hang) and stays up; protocol v2 works for fetches', async () => {
    const git = await checkout();
    const started = Date.now();
    const review = await git('push', server.httpUrl('site', 'admin', token), 'HEAD:refs/for/main');
    expect(Date.now() - started).to.be.below(30_000);
    expect(String(review.all)).to.include('refs/for/main stored; only main builds');
    const v2 = await execa('git', ['-c', 'protocol.version=2', 'ls-remote', server.httpUrl('site', 'admin', token)], {
      reject: false,
      all: true,
      env: { GIT_TRACE_PACKET: '1' },
    });
    expect(v2.exitCode, String(v2.all)).to.equal(0);
    expect(String(v2.all)).to.match(/< version 2/);
    const sshV2 = await execa('git', ['-c', 'protocol.version=2', 'ls-remote', server.url('site')], {
      reject: false,
      all: true,
      env: { ...server.clientEnv(admin), GIT_TRACE_PACKET: '1' },
    });
    expect(sshV2.exitCode, String(sshV2.all)).to.equal(0);
    expect(String(sshV2.all)).to.match(/< version 2/);
    expect((await git('push', server.httpUrl('site', 'admin', token), 'main')).exitCode, 'the server is still up').to.equal(0);
  });
});
