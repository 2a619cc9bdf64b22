/**
 * The HTTP API (/api/v1/) against the real server: logins (Bearer, Basic, the
 * throttle), every route for an admin, a writer and a reader, the same answer
 * for an app the caller may not read as for one that does not exist, archive
 * downloads (exact bytes, ranges, ETag), builds and rollbacks, and the limits
 * on request bodies and downloads.
 */
import { createHash } from 'node:crypto';
import { type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { execa } from 'execa';
import { type KeyPair, TestServer, makeKey } from './helpers/server.ts';
import { World, metadata } from './helpers/world.ts';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** False when the connection ended before the whole body came. */
  complete: boolean;
}

interface Package {
  id: string;
  bytes: number;
  current: boolean;
}

interface Build {
  id: number;
  status: string;
  revision: string | null;
  requestedBy: string | null;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const bearer = (token: string) => `Bearer ${token}`;
const basic = (user: string, token: string) => `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}`;

describe('HTTP API', function () {
  this.timeout(180_000);
  let world: World;
  let server: TestServer;
  const keys: Record<string, KeyPair> = {};
  const tokens: Record<string, string> = {};

  /** One request to the API (or any path), from `from`; the whole answer, or what came of it. */
  function call(
    method: string,
    path: string,
    options: { auth?: string; user?: string; body?: string | Buffer; headers?: Record<string, string>; from?: string } = {},
  ): Promise<Answer> {
    const auth = options.auth ?? (options.user ? bearer(tokens[options.user] as string) : undefined);
    // POSTs say their body is JSON unless a test says otherwise (the API refuses anything else).
    const json: Record<string, string> = method === 'POST' ? { 'Content-Type': 'application/json' } : {};
    const headers: Record<string, string> = { ...(auth ? { Authorization: auth } : {}), ...json, ...options.headers };
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: server.httpPort, method, path, headers, localAddress: options.from, agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', () => undefined);
        response.on('close', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body, text: body.toString('utf8'), complete: response.complete });
        });
      });
      req.on('error', reject);
      req.end(options.body);
    });
  }

  const json = (answer: Answer): unknown => JSON.parse(answer.text);
  const api = (path: string) => `/api/v1/${path}`;

  /** `ssh COMMAND` as `user`: its standard output, whole (it must succeed). */
  async function ssh(user: string, ...args: string[]): Promise<string> {
    const result = await server.ssh(keys[user] as KeyPair, args);
    expect(result.exitCode, `${args.join(' ')}: ${result.stderr}`).to.equal(0);
    // server.ssh drops the output's last newline.
    return `${result.stdout}\n`;
  }

  /** Pushes one commit of `files` to `branch` of `app` over HTTP as the admin. */
  async function push(app: string, files: Record<string, string>, branch = 'main') {
    const dir = join(world.dir, 'clients', app);
    mkdirSync(dir, { recursive: true });
    const git = (...args: string[]) => execa('git', args, { cwd: dir, env: server.clientEnv(keys.admin as KeyPair), reject: false, all: true });
    if ((await git('rev-parse', '--git-dir')).exitCode !== 0) await git('init', '-q', '-b', 'main');
    for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content);
    await git('add', '-A');
    await git('commit', '-qm', `change ${Date.now()}`);
    const pushed = await git('push', '-f', server.httpUrl(app, 'admin', tokens.admin), `HEAD:refs/heads/${branch}`);
    expect(pushed.exitCode, String(pushed.all)).to.equal(0);
    return String(pushed.all);
  }

  const packagesOf = async (app: string) => json(await call('GET', api(`apps/${app}/packages`), { user: 'admin' })) as Package[];
  const buildsOf = async (app: string) => json(await call('GET', api(`apps/${app}/builds`), { user: 'admin' })) as Build[];

  /** Waits until no build of `app` runs; its builds then. */
  /** The app's builds once none runs (and at least `count` exist: a queued one has no record before its turn). */
  async function settled(app: string, count = 0): Promise<Build[]> {
    for (let i = 0; i < 600; i++) {
      const builds = await buildsOf(app);
      if (builds.length >= count && builds.every((b) => b.status !== 'running')) return builds;
      await sleep(100);
    }
    throw new Error(`builds of ${app} still running`);
  }

  const STATIC = metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'echo built' } } });

  before(async () => {
    for (const name of ['admin', 'writer', 'reader', 'stranger']) keys[name] = await makeKey(name);
    // site keeps the logs of its newest 2 builds only; downloads and git share one slot per user.
    world = new World({ apps: { per_app: { site: { builds_per_app: 2 } } } });
    expect((await world.cliWithInput((keys.admin as KeyPair).publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    for (const name of ['writer', 'reader', 'stranger']) expect((await world.cliWithInput((keys[name] as KeyPair).publicKey, 'users', 'add', name)).exitCode).to.equal(0);
    for (const name of Object.keys(keys)) tokens[name] = (await world.cli('tokens', 'create', '--user', name)).stdout.trim().split('\n').pop() as string;
    for (const repo of ['site', 'other', 'ghost', 'slow']) expect((await world.cli('repos', 'create', repo)).exitCode).to.equal(0);
    expect((await world.cli('repos', 'grant', 'site', 'writer', 'write')).exitCode).to.equal(0);
    expect((await world.cli('repos', 'grant', 'site', 'reader', 'read')).exitCode).to.equal(0);
    expect((await world.cli('repos', 'grant', 'other', 'stranger', 'read')).exitCode).to.equal(0);
    server = new TestServer(world);
    await server.start({ git_per_user: 1, http: { body_timeout: 2 } });
    await push('site', { '.upaas.yml': STATIC, 'version.txt': 'one' });
    await push('site', { 'version.txt': 'two' });
    await push('ghost', { '.upaas.yml': STATIC });
    // slow builds only when asked to: its branch is not the deploy branch.
    await push('slow', { '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'echo sleeping; sleep 7' } } }) }, 'sleepy');
  });

  after(async () => {
    if (server) expect(await server.tearDown()).to.deep.equal([]);
  });

  it('logs in with a Bearer token or Basic user + token; a wrong or missing one is 401 JSON, and wrong ones are throttled', async () => {
    for (const auth of [bearer(tokens.admin as string), basic('admin', tokens.admin as string), `bearer  ${tokens.reader}`]) {
      const answer = await call('GET', api('apps'), { auth });
      expect(answer.status, auth).to.equal(200);
      expect(answer.headers['content-type']).to.equal('application/json; charset=utf-8');
    }
    const wrong = [bearer(`${tokens.admin}x`), bearer('upaas_000000000000_guess'), basic('admin', `${tokens.admin}x`), basic('reader', tokens.admin as string), 'Digest x', undefined];
    for (const auth of wrong) {
      // From an address of its own: its failures do not slow the other tests.
      const answer = await call('GET', api('apps'), { auth, from: '127.0.0.9' });
      expect(answer.status, String(auth)).to.equal(401);
      expect(answer.headers['www-authenticate'], 'Basic is taken, not asked for: a browser would keep sending it').to.equal('Bearer realm="upaas"');
      expect(json(answer)).to.deep.equal({
        error: 'authentication required: send a token as "Authorization: Bearer TOKEN", or Basic with your user name and token',
      });
    }
    // Before the route: an unknown path tells nobody without a login anything.
    expect((await call('GET', api('nothing-here'), { from: '127.0.0.9' })).status).to.equal(401);
    const log = server.output.join('');
    expect(log).to.include('failed login from 127.0.0.9: api: wrong token or user name (5 in a row; answered after 1.0s)');
    expect(log, 'no login at all is no failure').to.not.include('(6 in a row');
    // Git over HTTP takes a Bearer token too (the same login module).
    const refs = await call('GET', '/site.git/info/refs?service=git-upload-pack', { user: 'reader' });
    expect(refs.status).to.equal(200);
  });

  it('every read route gives an admin and a reader what the same command gives them over SSH with --json', async () => {
    const views: [string, string[]][] = [
      ['apps', ['repos', 'list', '--json']],
      ['apps/site', ['repos', 'info', 'site', '--json']],
      ['apps/site/packages', ['packages', 'site', '--json']],
      ['apps/site/releases', ['releases', 'site', '--json']],
      ['apps/site/builds', ['builds', 'site', '--json']],
    ];
    for (const user of ['admin', 'reader']) {
      for (const [path, command] of views) {
        const answer = await call('GET', api(path), { user });
        expect(answer.status, `${user} ${path}`).to.equal(200);
        expect(answer.text, `${user} ${path}`).to.equal(await ssh(user, ...command));
      }
    }
    const apps = json(await call('GET', api('apps'), { user: 'reader' })) as { name: string; access: string }[];
    expect(apps.map((a) => [a.name, a.access])).to.deep.equal([['site', 'read']]);
    expect(json(await call('GET', api('apps/site'), { user: 'reader' }))).to.not.have.property('grants');
    // The name may end in ".git", as over git.
    expect((await call('GET', api('apps/site.git/packages'), { user: 'reader' })).text).to.equal(await ssh('reader', 'packages', 'site', '--json'));
    const head = await call('HEAD', api('apps/site/builds'), { user: 'reader' });
    expect(head.status).to.equal(200);
    expect(head.body.length).to.equal(0);
    expect(Number(head.headers['content-length'])).to.be.above(0);
  });

  it('a build log as text, in the words of the log command when there is none', async () => {
    const [latest] = await buildsOf('site');
    const log = await call('GET', api(`apps/site/builds/${latest?.id}/log`), { user: 'reader' });
    expect(log.status).to.equal(200);
    expect(log.headers['content-type']).to.equal('text/plain; charset=utf-8');
    expect(log.headers['x-upaas-build-status']).to.equal('succeeded');
    expect(log.text).to.include(`-----> Build ${latest?.id} of site`);
    expect(log.text).to.equal(await ssh('reader', 'log', 'site', String(latest?.id)));
    const missing = await call('GET', api('apps/site/builds/99999/log'), { user: 'reader' });
    expect([missing.status, json(missing)]).to.deep.equal([404, { error: 'site has no build 99999' }]);
    const bad = await call('GET', api('apps/site/builds/1x/log'), { user: 'reader' });
    expect([bad.status, json(bad)]).to.deep.equal([400, { error: 'build: expected a build number, got "1x"' }]);
    // Another app's build is no build of this one.
    const [ghostBuild] = await buildsOf('ghost');
    expect((await call('GET', api(`apps/site/builds/${ghostBuild?.id}/log`), { user: 'admin' })).status).to.equal(404);
  });

  it('downloads an archive: the exact bytes (sha256 = id = ETag), by prefix or "current", HEAD, ranges, If-None-Match, If-Range, 416', async () => {
    const current = (await packagesOf('site')).find((p) => p.current) as Package;
    const whole = await call('GET', api('apps/site/packages/current/archive'), { user: 'reader' });
    expect(whole.status).to.equal(200);
    expect(whole.complete).to.equal(true);
    expect(sha256(whole.body)).to.equal(current.id);
    expect(whole.body.length).to.equal(current.bytes);
    expect(whole.headers).to.include({
      etag: `"${current.id}"`,
      'accept-ranges': 'bytes',
      'content-length': String(current.bytes),
      'content-type': 'application/zstd',
      'content-disposition': `attachment; filename="site-${current.id.slice(0, 12)}.tar.zst"`,
    });
    for (const id of [current.id, current.id.slice(0, 7)]) {
      const byId = await call('GET', api(`apps/site/packages/${id}/archive`), { user: 'admin' });
      expect(sha256(byId.body), id).to.equal(current.id);
    }
    const head = await call('HEAD', api('apps/site/packages/current/archive'), { user: 'reader' });
    expect([head.status, head.body.length, head.headers['content-length'], head.headers.etag]).to.deep.equal([200, 0, String(current.bytes), `"${current.id}"`]);
    // A download cut at half resumes where it stopped.
    const half = Math.floor(current.bytes / 2);
    const first = await call('GET', api('apps/site/packages/current/archive'), { user: 'reader', headers: { Range: `bytes=0-${half - 1}` } });
    const rest = await call('GET', api(`apps/site/packages/${current.id}/archive`), { user: 'reader', headers: { Range: `bytes=${half}-`, 'If-Range': `"${current.id}"` } });
    expect([first.status, first.headers['content-range'], first.body.length]).to.deep.equal([206, `bytes 0-${half - 1}/${current.bytes}`, half]);
    expect([rest.status, rest.headers['content-range']]).to.deep.equal([206, `bytes ${half}-${current.bytes - 1}/${current.bytes}`]);
    expect(Buffer.concat([first.body, rest.body]).equals(whole.body)).to.equal(true);
    const tail = await call('GET', api('apps/site/packages/current/archive'), { user: 'reader', headers: { Range: 'bytes=-10' } });
    expect(tail.body.equals(whole.body.subarray(-10))).to.equal(true);
    // If-Range of another archive: the whole of this one.
    const changed = await call('GET', api('apps/site/packages/current/archive'), { user: 'reader', headers: { Range: 'bytes=0-9', 'If-Range': '"0000"' } });
    expect([changed.status, changed.body.length]).to.deep.equal([200, current.bytes]);
    for (const tag of [`"${current.id}"`, `W/"${current.id}", "other"`, '*']) {
      const cached = await call('GET', api('apps/site/packages/current/archive'), { user: 'reader', headers: { 'If-None-Match': tag } });
      expect([cached.status, cached.body.length, cached.headers.etag], tag).to.deep.equal([304, 0, `"${current.id}"`]);
    }
    expect((await call('GET', api('apps/site/packages/current/archive'), { user: 'reader', headers: { 'If-None-Match': '"other"' } })).status).to.equal(200);
    const past = await call('GET', api('apps/site/packages/current/archive'), { user: 'reader', headers: { Range: `bytes=${current.bytes}-` } });
    expect([past.status, past.headers['content-range'], json(past)]).to.deep.equal([
      416,
      `bytes */${current.bytes}`,
      { error: `the requested range is not satisfiable: the archive has ${current.bytes} bytes` },
    ]);
    const badId = await call('GET', api('apps/site/packages/xyz/archive'), { user: 'reader' });
    expect([badId.status, json(badId)]).to.deep.equal([400, { error: 'invalid package id "xyz": expected a package id or a unique prefix of at least 7 hex characters' }]);
    const unknown = await call('GET', api('apps/site/packages/abcdef0/archive'), { user: 'reader' });
    expect([unknown.status, json(unknown)]).to.deep.equal([404, { error: 'site has no package abcdef0' }]);
    expect((await call('GET', api('apps/other/packages/current/archive'), { user: 'admin' })).text).to.equal('{\n  "error": "other has no current package"\n}\n');
  });

  it('a download takes one of the user\'s git slots (server.git_per_user): 429 while git holds it', async () => {
    // A receive-pack whose body trickles holds the writer's one slot until it is cut.
    const socket: Socket = connect({ port: server.httpPort, host: '127.0.0.1' });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.on('error', () => undefined);
    socket.resume();
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(
      `POST /site.git/git-receive-pack HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearer(tokens.writer as string)}\r\n` +
        'Content-Type: application/x-git-receive-pack-request\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    const drip = setInterval(() => socket.write('1\r\n0\r\n'), 500);
    try {
      await sleep(500);
      const refused = await call('GET', api('apps/site/packages/current/archive'), { user: 'writer' });
      expect(refused.status).to.equal(429);
      expect(refused.headers['retry-after']).to.equal('5');
      expect(json(refused)).to.deep.equal({ error: 'you have 1 git operations or downloads running (server.git_per_user); try again when one ends' });
      // The SSH command takes the same slot.
      const overSsh = await server.ssh(keys.writer as KeyPair, ['packages', 'download', 'site']);
      expect([overSsh.exitCode, overSsh.stdout, overSsh.stderr]).to.deep.equal([
        1,
        '',
        'upaas packages download: you have 1 git operations or downloads running (server.git_per_user); try again when one ends',
      ]);
      expect((await call('GET', api('apps/site/packages/current/archive'), { user: 'reader' })).status, "another user's slot").to.equal(200);
      // Lists take no slot.
      expect((await call('GET', api('apps/site/packages'), { user: 'writer' })).status).to.equal(200);
      await closed;
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
    // The slot is given back once git has ended, just after the cut.
    let again = 0;
    for (let i = 0; i < 20 && again !== 200; i++) {
      again = (await call('GET', api('apps/site/packages/current/archive'), { user: 'writer' })).status;
      if (again !== 200) await sleep(100);
    }
    expect(again, 'free again').to.equal(200);
  });

  it('POST builds: 403 for a reader, 202 with the build for a writer, which then builds; old logs deleted by retention are 404', async () => {
    const refused = await call('POST', api('apps/site/builds'), { user: 'reader', body: '{}' });
    expect([refused.status, json(refused)]).to.deep.equal([403, { error: 'you may read repository site but not write to it' }]);
    const before = await buildsOf('site');
    const started = await call('POST', api('apps/site/builds'), { user: 'writer', body: JSON.stringify({ fresh: true }), headers: { 'Content-Type': 'application/json' } });
    expect(started.status, started.text).to.equal(202);
    const { build } = json(started) as { build: number };
    expect(json(started)).to.deep.equal({ build, log: `/api/v1/apps/site/builds/${build}/log` });
    expect(started.headers.location).to.equal(`/api/v1/apps/site/builds/${build}/log`);
    const builds = await settled('site');
    const made = builds.find((b) => b.id === build) as Build & { fresh: boolean };
    expect(made).to.include({ status: 'succeeded', requestedBy: 'writer', fresh: true });
    expect((await call('GET', api(`apps/site/builds/${build}/log`), { user: 'reader' })).text).to.match(/-----> Package [0-9a-f]{64} .* is now current for site/);
    // site keeps 2 logs: the oldest build's is gone now.
    const oldest = before[before.length - 1] as Build;
    const gone = await call('GET', api(`apps/site/builds/${oldest.id}/log`), { user: 'reader' });
    const words = (await server.ssh(keys.reader as KeyPair, ['log', 'site', String(oldest.id)])).stderr.trim().replace(/^upaas log: /, '');
    expect(words).to.match(/was deleted: apps.builds_per_app/);
    expect([gone.status, json(gone)]).to.deep.equal([404, { error: words }]);
    // A revision, like build --rev; a bad one is refused before anything is queued.
    const bad = await call('POST', api('apps/site/builds'), { user: 'writer', body: '{"revision": "--upload-pack=x"}' });
    expect([bad.status, json(bad)]).to.deep.equal([400, { error: 'revision: expected a branch, tag or commit (letters, digits and ._/^~@{}-, not starting with "-"), got "--upload-pack=x"' }]);
    expect((await buildsOf('site')).length).to.equal(builds.length);
  });

  it('POST builds of a revision that waits its turn: 202 queued; a running build\'s log is what its file holds so far', async () => {
    const first = await call('POST', api('apps/slow/builds'), { user: 'admin', body: '{"revision": "sleepy"}' });
    expect(first.status, first.text).to.equal(202);
    const { build } = json(first) as { build: number };
    let running: Answer | undefined;
    for (let i = 0; i < 100; i++) {
      running = await call('GET', api(`apps/slow/builds/${build}/log`), { user: 'admin' });
      if (running.text.includes('sleeping')) break;
      await sleep(100);
    }
    expect(running?.headers['x-upaas-build-status']).to.equal('running');
    expect(running?.text).to.include(`-----> Build ${build} of slow`);
    const startedAt = Date.now();
    const second = await call('POST', api('apps/slow/builds'), { user: 'admin', body: '{"revision": "sleepy", "fresh": false}' });
    expect([second.status, json(second)]).to.deep.equal([202, { build: null, queued: true }]);
    expect(Date.now() - startedAt).to.be.within(4500, 7000);
    const builds = await settled('slow', 2);
    expect(builds.map((b) => b.status)).to.deep.equal(['succeeded', 'succeeded']);
    expect(builds[1]?.id).to.equal(build);
  });

  it('POSTs take JSON only, said so: a form or plain text from a page elsewhere starts nothing (no cross-site request forgery)', async () => {
    const before = (await buildsOf('site')).length;
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x']) {
      const forged = await call('POST', api('apps/site/builds'), { user: 'writer', body: '{}', headers: { 'Content-Type': type, Origin: 'https://evil.example' } });
      expect([forged.status, json(forged)], type).to.deep.equal([415, { error: 'POST /api/v1/apps/site/builds takes a JSON body: send it with "Content-Type: application/json"' }]);
    }
    const untyped = await call('POST', api('apps/site/rollback'), { user: 'writer', body: '{"package": "abcdef0"}', headers: { 'Content-Type': '' } });
    expect(untyped.status).to.equal(415);
    // Access first, as everywhere: a stranger still learns nothing.
    const stranger = await call('POST', api('apps/site/builds'), { user: 'stranger', body: '{}', headers: { 'Content-Type': 'text/plain' } });
    expect(stranger.status).to.equal(404);
    expect((await buildsOf('site')).length).to.equal(before);
  });

  it('POST rollback: a kept package current again as a new release; refusals name what is wrong', async () => {
    const packages = await packagesOf('site');
    const older = packages.find((p) => !p.current) as Package;
    expect((await call('POST', api('apps/site/rollback'), { user: 'reader', body: JSON.stringify({ package: older.id }) })).status).to.equal(403);
    const answer = await call('POST', api('apps/site/rollback'), { user: 'writer', body: JSON.stringify({ package: older.id.slice(0, 10) }) });
    expect(answer.status, answer.text).to.equal(200);
    const releases = json(await call('GET', api('apps/site/releases'), { user: 'reader' })) as { kind: string; by: string; package: string }[];
    expect(json(answer)).to.deep.equal({ release: releases[0], package: older.id });
    expect(releases[0]).to.include({ kind: 'rollback', by: 'writer', package: older.id });
    expect((await packagesOf('site')).find((p) => p.current)?.id).to.equal(older.id);
    const again = await call('POST', api('apps/site/rollback'), { user: 'writer', body: JSON.stringify({ package: older.id }) });
    expect(again.status).to.equal(409);
    expect(json(again)).to.have.property('error').that.includes('current');
    const refusals: [string | Buffer, number, string][] = [
      ['', 400, 'package: required, missing from the request body'],
      ['{"package": 7}', 400, 'package: expected a package id or a unique prefix of at least 7 hex characters, got 7'],
      ['{"package": "abc"}', 400, 'package: expected a package id or a unique prefix of at least 7 hex characters, got "abc"'],
      [`{"package": "${older.id}", "force": true}`, 400, 'unknown field "force" in the request body: expected "package"'],
      ['{"__proto__": {}}', 400, 'unknown field "__proto__" in the request body: expected "package"'],
      ['[1]', 400, 'the request body: expected a JSON object, got an array'],
      ['{"package": ', 400, 'the request body is not valid JSON: '],
      [Buffer.from([0x7b, 0xff, 0x7d]), 400, 'the request body is not UTF-8 text'],
      ['{"package": "abcdef0"}', 404, 'site has no package abcdef0'],
    ];
    for (const [body, status, error] of refusals) {
      const refused = await call('POST', api('apps/site/rollback'), { user: 'writer', body });
      expect(refused.status, String(body)).to.equal(status);
      expect((json(refused) as { error: string }).error, String(body)).to.satisfy((e: string) => e === error || (error.endsWith(': ') && e.startsWith(error)));
    }
    const wrongType = await call('POST', api('apps/site/builds'), { user: 'writer', body: '{"fresh": "yes"}' });
    expect([wrongType.status, json(wrongType)]).to.deep.equal([400, { error: 'fresh: expected true or false, got "yes"' }]);
  });

  it('an app the caller may not read is 404 on every route, word for word as one that does not exist', async () => {
    const [ghostPackage] = await packagesOf('ghost');
    const [ghostBuild] = await buildsOf('ghost');
    const requests: [string, string, string?][] = [
      ['GET', 'apps/ghost'],
      ['GET', 'apps/ghost/packages'],
      ['GET', 'apps/ghost/releases'],
      ['GET', 'apps/ghost/builds'],
      ['GET', `apps/ghost/builds/${ghostBuild?.id}/log`],
      ['GET', 'apps/ghost/builds/x/log'],
      ['GET', 'apps/ghost/packages/current/archive'],
      ['GET', `apps/ghost/packages/${ghostPackage?.id}/archive`],
      ['HEAD', `apps/ghost/packages/${ghostPackage?.id}/archive`],
      ['POST', 'apps/ghost/builds', '{}'],
      ['POST', 'apps/ghost/builds', '{"fresh": "not even valid'],
      ['POST', 'apps/ghost/rollback', JSON.stringify({ package: ghostPackage?.id })],
    ];
    const answers = async (user: string) => {
      const all = [];
      for (const [method, path, body] of requests) {
        const answer = await call(method, api(path), { user, body });
        all.push([method, path, answer.status, answer.text, answer.headers['content-type'], answer.headers['content-length']]);
      }
      return all;
    };
    const strangerSees = await answers('stranger');
    const nobody = 'repository ghost does not exist or you have no access to it';
    for (const [method, path, status, text] of strangerSees) {
      expect(status, `${method} ${path}`).to.equal(404);
      if (method !== 'HEAD') expect(JSON.parse(text as string), `${method} ${path}`).to.deep.equal({ error: nobody });
    }
    expect((json(await call('GET', api('apps'), { user: 'stranger' })) as { name: string }[]).map((a) => a.name)).to.deep.equal(['other']);
    expect((await buildsOf('ghost')).length, 'no build was queued').to.equal(1);
    expect(await ssh('admin', 'repos', 'delete', 'ghost', '--yes')).to.be.a('string');
    expect(await answers('stranger'), 'once ghost does not exist').to.deep.equal(strangerSees);
    expect(await answers('admin'), 'an admin asking for a missing app').to.deep.equal(strangerSees);
    // A name no repo can have is 404 as well, and says so.
    const badName = await call('GET', api('apps/-x/builds'), { user: 'admin' });
    expect(badName.status).to.equal(404);
    expect((json(badName) as { error: string }).error).to.match(/^invalid app name "-x"/);
  });

  it('unknown routes are 404 JSON, a known route with another method 405 with Allow', async () => {
    for (const path of ['/api/v1', '/api/v1/', '/api/v1/apps/', '/api/v1/nothing', '/api/v1/apps/site/packages/current', '/api/v2/apps', '/api/v1/apps/site/builds/1/log/x']) {
      const answer = await call('GET', path, { user: 'admin' });
      expect(answer.status, path).to.equal(404);
      // /api/v2 is no API path: git's answer.
      if (path.startsWith('/api/v1')) expect(json(answer), path).to.deep.equal({ error: `no API route at ${path}` });
    }
    const cases: [string, string, string][] = [
      ['DELETE', 'apps/site', 'GET, HEAD'],
      ['POST', 'apps', 'GET, HEAD'],
      ['GET', 'apps/site/rollback', 'POST'],
      ['PUT', 'apps/site/builds', 'GET, HEAD, POST'],
      ['POST', 'apps/site/packages/current/archive', 'GET, HEAD'],
    ];
    for (const [method, path, allowed] of cases) {
      const answer = await call(method, api(path), { user: 'reader' });
      expect([answer.status, answer.headers.allow, json(answer)], `${method} ${path}`).to.deep.equal([
        405,
        allowed,
        { error: `${method} is not allowed on /api/v1/${path}; it takes ${allowed}` },
      ]);
    }
  });

  it('request bodies: at most 64 KiB (413, also when chunked), and one that trickles is cut', async () => {
    const big = JSON.stringify({ fresh: true, pad: 'x'.repeat(70 * 1024) });
    const declared = await call('POST', api('apps/site/builds'), { user: 'writer', body: big });
    expect([declared.status, json(declared)]).to.deep.equal([413, { error: 'the request body is larger than 64 KiB' }]);
    expect(declared.headers.connection).to.equal('close');
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: server.httpPort, method: 'POST', path: api('apps/site/builds'), headers: { Authorization: bearer(tokens.writer as string), 'Content-Type': 'application/json' }, agent: false },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 80; i++) req.write('x'.repeat(1024));
    });
    expect(chunked).to.equal(413);
    // Just under the limit is read (and refused for its content).
    const under = await call('POST', api('apps/site/rollback'), { user: 'writer', body: JSON.stringify({ package: 'a'.repeat(60 * 1024) }) });
    expect(under.status).to.equal(400);
    const socket = connect({ port: server.httpPort, host: '127.0.0.1' });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.on('error', () => undefined);
    socket.resume();
    const started = Date.now();
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(`POST /api/v1/apps/site/builds HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearer(tokens.writer as string)}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const drip = setInterval(() => socket.write('1\r\n \r\n'), 500);
    await closed;
    clearInterval(drip);
    expect(Date.now() - started, 'cut within a few body_timeout windows').to.be.below(8000);
    expect(server.output.join('')).to.include('api: cut a request from 127.0.0.1: its body brought less than 1024 bytes in 2s');
    expect((await buildsOf('site')).every((b) => b.status !== 'running')).to.equal(true);
  });
});
