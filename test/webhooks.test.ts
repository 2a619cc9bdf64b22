/**
 * Webhooks (core/webhooks.ts, state/webhooks.ts, `webhooks deliveries`):
 * the Webhooks sink against real local HTTP receivers that check each
 * signature as a receiver would (HMAC-SHA256, timingSafeEqual), then a real
 * server whose push's build reaches a receiver while a receiver that is down
 * is retried and recorded failed.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, type Server, type ServerResponse, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { type Config, loadConfig, parseConfig } from '../src/config/config.ts';
import { DELIVERIES_PER_APP, SERVER_STOPPED, Webhooks, shownUrl, signature } from '../src/core/webhooks.ts';
import type { AppEvent } from '../src/events/events.ts';
import { State } from '../src/state/state.ts';
import type { DeliveryRecord } from '../src/state/webhooks.ts';
import { type KeyPair, TestServer, freePort, makeKey } from './helpers/server.ts';
import { PROJECT, World, metadata } from './helpers/world.ts';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

/** What a receiver does with its nth request (from 0): answer `status` with `body` (after `delay` ms), or never answer. */
type Answer = { status: number; body?: string | Buffer; headers?: Record<string, string>; delay?: number } | 'hang';

/** A real HTTP receiver on a random port that records every request. */
class Receiver {
  readonly received: Received[] = [];
  private readonly hanging: ServerResponse[] = [];
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(answer: (index: number, path: string) => Answer = () => ({ status: 200, body: 'ok' })): Promise<Receiver> {
    let receiver: Receiver | null = null;
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const self = receiver as Receiver;
        const index = self.received.length;
        self.received.push({ path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks), at: Date.now() });
        const what = answer(index, request.url ?? '');
        if (what === 'hang') {
          self.hanging.push(response);
          return;
        }
        setTimeout(() => {
          response.writeHead(what.status, what.headers ?? {});
          response.end(what.body ?? '');
        }, what.delay ?? 0);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    receiver = new Receiver(server, typeof address === 'object' && address ? address.port : 0);
    return receiver;
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async close(): Promise<void> {
    for (const response of this.hanging) response.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Whether `received` carries a valid X-Upaas-Signature under `secret`, checked as a receiver should: over the raw body, in constant time. */
function signedBy(secret: string, received: Received): boolean {
  const given = Buffer.from(String(received.headers['x-upaas-signature'] ?? ''));
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(received.body).digest('hex')}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Resolves once `check` holds (polled), or fails after `ms`. */
async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const SECRET = 'a-secret-of-16-or-more';
const OTHER_SECRET = 'another-secret-of-16-plus';

const event = (over: Partial<AppEvent> = {}): AppEvent => ({
  event: 'build.succeeded',
  app: 'web',
  build: { id: 7, status: 'succeeded', revision: 'b'.repeat(40), fresh: false },
  package: { id: 'c'.repeat(64), revision: 'b'.repeat(40), bytes: 1234 },
  at: new Date().toISOString(),
  ...over,
});

describe('webhooks (core)', function () {
  this.timeout(30_000);
  let dir: string;
  let state: State;
  let receivers: Receiver[];
  let sinks: Webhooks[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-webhooks-'));
    state = State.open(join(dir, 'state'));
    receivers = [];
    sinks = [];
  });
  afterEach(async () => {
    for (const sink of sinks) await sink.stop();
    for (const receiver of receivers) await receiver.close();
    state.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function receiver(answer?: (index: number, path: string) => Answer): Promise<Receiver> {
    const made = await Receiver.start(answer);
    receivers.push(made);
    return made;
  }

  /** A Webhooks sink over this test's state, with `apps` and `server.webhooks` as given. */
  function sink(apps: Record<string, unknown>, delivery: { timeout?: number; tries?: number; backoff?: number } = {}): Webhooks {
    const config: Config = parseConfig({ paths: { state: join(dir, 'state') }, apps, server: { webhooks: { timeout: 2, tries: 3, backoff: 0, ...delivery } } }, null);
    const made = new Webhooks({ config, state });
    sinks.push(made);
    return made;
  }

  const only = (app = 'web'): DeliveryRecord => {
    const list = state.webhooks.list(app);
    expect(list, JSON.stringify(list)).to.have.length(1);
    return list[0] as DeliveryRecord;
  };

  it('posts the event as signed JSON to each hook that takes it, after emit has returned', async () => {
    const hooks = await receiver(() => ({ status: 200, body: 'thanks', delay: 300 }));
    const webhooks = sink({
      webhooks: [
        { url: hooks.url('/all'), secret: SECRET },
        { url: hooks.url('/failures'), secret: OTHER_SECRET, events: ['build.failed'] },
      ],
    });
    const sent = event();
    const started = performance.now();
    webhooks.emit(sent);
    const took = performance.now() - started;
    expect(took, 'emit returns at once').to.be.below(50);
    const pending = only();
    expect(pending).to.deep.include({ app: 'web', event: 'build.succeeded', url: hooks.url('/all'), status: 'pending', attempts: 0, responseCode: null, finishedAt: null });
    await webhooks.settle();

    expect(hooks.received.map((r) => r.path)).to.deep.equal(['/all']);
    const [got] = hooks.received as [Received];
    expect(got.headers).to.deep.include({
      'content-type': 'application/json',
      'user-agent': 'upaas',
      'x-upaas-event': 'build.succeeded',
      'x-upaas-delivery': pending.id,
    });
    expect(pending.id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(signedBy(SECRET, got), 'signed with the hook secret').to.equal(true);
    expect(signedBy(OTHER_SECRET, got), 'not with another').to.equal(false);
    expect(String(got.headers['x-upaas-signature'])).to.equal(signature(SECRET, got.body));
    expect(JSON.parse(got.body.toString('utf8'))).to.deep.equal(sent);
    const done = only();
    expect(done).to.deep.include({ status: 'delivered', attempts: 1, responseCode: 200, error: null, payload: got.body.toString('utf8') });
    expect(done.finishedAt).to.be.a('string');

    webhooks.emit(event({ event: 'build.failed', build: { id: 8, status: 'failed', revision: null, fresh: true, error: '!     user error: x' } }));
    await webhooks.settle();
    expect(hooks.received.map((r) => r.path)).to.deep.equal(['/all', '/all', '/failures']);
    const failures = hooks.received.find((r) => r.path === '/failures') as Received;
    expect(signedBy(OTHER_SECRET, failures)).to.equal(true);
    const ids = hooks.received.map((r) => r.headers['x-upaas-delivery']);
    expect(new Set(ids).size, 'one id per delivery').to.equal(3);
  });

  it('retries a failed try after the backoff, doubled, with the same id and body, until one is answered 2xx', async () => {
    const hooks = await receiver((index) => (index < 2 ? { status: index === 0 ? 500 : 503, body: 'busy' } : { status: 204 }));
    const webhooks = sink({ webhooks: [{ url: hooks.url(), secret: SECRET }] }, { backoff: 1 });
    webhooks.emit(event());
    await eventually(() => only().attempts === 1, 'the first try recorded');
    expect(only()).to.deep.include({ status: 'pending', attempts: 1, responseCode: 500, error: 'HTTP 500: busy' });
    await webhooks.settle();
    expect(hooks.received).to.have.length(3);
    const [first, second, third] = hooks.received as [Received, Received, Received];
    expect(second.at - first.at, 'first retry after the backoff').to.be.within(950, 1900);
    expect(third.at - second.at, 'then twice as long').to.be.within(1950, 3500);
    expect(new Set(hooks.received.map((r) => r.headers['x-upaas-delivery'])).size).to.equal(1);
    expect(new Set(hooks.received.map((r) => r.body.toString('hex'))).size).to.equal(1);
    expect(hooks.received.every((r) => signedBy(SECRET, r))).to.equal(true);
    expect(only()).to.deep.include({ status: 'delivered', attempts: 3, responseCode: 204, error: null });
  });

  it('follows no redirect: a 3xx is a failed try, and the place it points to gets nothing', async () => {
    const elsewhere = await receiver();
    const hooks = await receiver(() => ({ status: 302, headers: { location: elsewhere.url('/trap') } }));
    const webhooks = sink({ webhooks: [{ url: hooks.url(), secret: SECRET }] });
    webhooks.emit(event());
    await webhooks.settle();
    expect(hooks.received).to.have.length(3);
    expect(elsewhere.received).to.have.length(0);
    const failed = only();
    expect(failed).to.deep.include({ status: 'failed', attempts: 3, responseCode: 302 });
    expect(failed.error).to.match(/^HTTP 302 \(a redirect: redirects are not followed\)/);
  });

  it('records a receiver that is down as failed after every try, with why', async () => {
    const closed = await freePort();
    const webhooks = sink({ webhooks: [{ url: `http://127.0.0.1:${closed}/hook`, secret: SECRET }] });
    webhooks.emit(event());
    await webhooks.settle();
    const failed = only();
    expect(failed).to.deep.include({ status: 'failed', attempts: 3, responseCode: null });
    expect(failed.error).to.match(/ECONNREFUSED 127\.0\.0\.1:[0-9]+/);
  });

  it('keeps only the start of an error answer, as one line', async () => {
    const big = Buffer.concat([Buffer.from('line one\n\u001b[31mred\u0007\r\n'), Buffer.alloc(4 * 1024 * 1024, 'x')]);
    const hooks = await receiver(() => ({ status: 500, body: big }));
    const webhooks = sink({ webhooks: [{ url: hooks.url(), secret: SECRET }] }, { tries: 1 });
    webhooks.emit(event());
    await webhooks.settle();
    const failed = only();
    expect(failed).to.deep.include({ status: 'failed', attempts: 1, responseCode: 500 });
    expect(failed.error).to.match(/^HTTP 500: line one \[31mred x+\.\.\.$/);
    expect((failed.error as string).length).to.be.below(220);
  });

  it('gives each try `timeout` seconds', async () => {
    const hooks = await receiver(() => 'hang');
    const webhooks = sink({ webhooks: [{ url: hooks.url(), secret: SECRET }] }, { timeout: 1, tries: 2 });
    const started = Date.now();
    webhooks.emit(event());
    await webhooks.settle();
    expect(Date.now() - started).to.be.within(1900, 4000);
    expect(hooks.received).to.have.length(2);
    expect(only()).to.deep.include({ status: 'failed', attempts: 2, responseCode: null, error: 'no answer within 1 s' });
  });

  it('stop aborts the tries and waits under way and records them failed, and so every later event', async () => {
    const hanging = await receiver(() => 'hang');
    const failing = await receiver(() => ({ status: 500 }));
    const webhooks = sink(
      { webhooks: [{ url: hanging.url(), secret: SECRET }], per_app: { api: { webhooks: [{ url: failing.url(), secret: SECRET }] } } },
      { timeout: 60, backoff: 60 },
    );
    webhooks.emit(event());
    webhooks.emit(event({ app: 'api' }));
    await eventually(() => hanging.received.length === 1 && state.webhooks.list('api')[0]?.attempts === 1, 'both first tries');
    const started = Date.now();
    await webhooks.stop();
    expect(Date.now() - started).to.be.below(1000);
    expect(only('web')).to.deep.include({ status: 'failed', attempts: 1, responseCode: null, error: SERVER_STOPPED });
    expect(only('api')).to.deep.include({ status: 'failed', attempts: 1, responseCode: 500, error: SERVER_STOPPED });
    webhooks.emit(event({ app: 'api', event: 'release.created' }));
    await webhooks.settle();
    expect(state.webhooks.list('api')[0]).to.deep.include({ event: 'release.created', status: 'failed', attempts: 0, error: SERVER_STOPPED });
    expect(failing.received).to.have.length(1);
  });

  it("sends an app's events to its own hooks (apps.per_app), and a URL's login as Basic authorization", async () => {
    const hooks = await receiver();
    const login = `http://hook-user:p%40ss@127.0.0.1:${hooks.port}/api`;
    const webhooks = sink({
      webhooks: [{ url: hooks.url('/everyone'), secret: SECRET }],
      per_app: { api: { webhooks: [{ url: login, secret: OTHER_SECRET, events: ['release.created'] }] }, quiet: { webhooks: [] } },
    });
    webhooks.emit(event({ app: 'quiet' }));
    webhooks.emit(event({ app: 'api' }));
    webhooks.emit(event({ app: 'api', event: 'release.created', release: { version: 3, kind: 'build', by: 'dev', status: 'ok' } }));
    webhooks.emit(event({ app: 'web' }));
    await webhooks.settle();
    expect(hooks.received.map((r) => r.path).sort()).to.deep.equal(['/api', '/everyone']);
    const api = hooks.received.find((r) => r.path === '/api') as Received;
    expect(api.headers.authorization).to.equal(`Basic ${Buffer.from('hook-user:p@ss').toString('base64')}`);
    expect(signedBy(OTHER_SECRET, api)).to.equal(true);
    expect(state.webhooks.list('quiet')).to.deep.equal([]);
    expect(only('api')).to.deep.include({ event: 'release.created', status: 'delivered', url: `http://***@127.0.0.1:${hooks.port}/api` });
    // A login that is no valid percent-encoding is sent as written, not left pending for good.
    const odd = sink({ webhooks: [{ url: `http://a%zz:b@127.0.0.1:${hooks.port}/odd`, secret: SECRET }] });
    odd.emit(event({ app: 'odd' }));
    await odd.settle();
    expect(only('odd')).to.deep.include({ status: 'delivered' });
    expect(hooks.received.find((r) => r.path === '/odd')?.headers.authorization).to.equal(`Basic ${Buffer.from('a%zz:b').toString('base64')}`);
    expect(shownUrl('https://example.com/hook?x=1')).to.equal('https://example.com/hook?x=1');
    expect(shownUrl('https://only-user@example.com/')).to.equal('https://***@example.com/');
  });

  it(`keeps the newest ${DELIVERIES_PER_APP} deliveries of each app`, () => {
    const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
    for (let i = 0; i < DELIVERIES_PER_APP + 5; i++) {
      state.webhooks.add({ id: `web-${i}`, app: 'web', event: 'build.started', url: 'http://x.invalid/', payload: '{}', createdAt: at(i) }, DELIVERIES_PER_APP);
    }
    for (let i = 0; i < 3; i++) {
      state.webhooks.add({ id: `api-${i}`, app: 'api', event: 'build.started', url: 'http://x.invalid/', payload: '{}', createdAt: at(i) }, DELIVERIES_PER_APP);
    }
    const web = state.webhooks.list('web');
    expect(web).to.have.length(DELIVERIES_PER_APP);
    expect(web[0]?.id, 'newest first').to.equal(`web-${DELIVERIES_PER_APP + 4}`);
    expect(web.at(-1)?.id, 'the oldest five are gone').to.equal('web-5');
    expect(state.webhooks.list('api')).to.have.length(3);
  });

  it('marks failed at start what a process that ended left pending', () => {
    const webhooks = sink({ webhooks: [] });
    const old = new Date(Date.now() - 3600_000).toISOString();
    state.webhooks.add({ id: 'old', app: 'web', event: 'build.started', url: 'http://x.invalid/', payload: '{}', createdAt: old }, DELIVERIES_PER_APP);
    state.webhooks.add({ id: 'new', app: 'web', event: 'build.started', url: 'http://x.invalid/', payload: '{}', createdAt: new Date().toISOString() }, DELIVERIES_PER_APP);
    expect(webhooks.failStale()).to.equal(1);
    expect(state.webhooks.get('old')).to.deep.include({ status: 'failed', error: 'the process sending it ended before it was delivered' });
    expect(state.webhooks.get('new')).to.deep.include({ status: 'pending' });
  });
});

describe('webhooks deliveries (command)', function () {
  this.timeout(60_000);

  it('lists an app’s deliveries newest first, URL logins masked, never a secret; admins only', async () => {
    const hooks = await Receiver.start((index) => (index === 0 ? { status: 200 } : { status: 500, body: 'nope' }));
    const world = new World({
      apps: { webhooks: [{ url: `http://hook-user:hunter2hunter2@127.0.0.1:${hooks.port}/hook`, secret: SECRET }] },
      server: { webhooks: { timeout: 2, tries: 1, backoff: 0 } },
    });
    try {
      await world.app('web');
      const config = loadConfig(world.configFile);
      const state = State.open(config.paths.state);
      try {
        const webhooks = new Webhooks({ config, state });
        webhooks.emit(event({ event: 'build.started', build: { id: 1, status: 'running', revision: null, fresh: true } }));
        await webhooks.settle();
        webhooks.emit(event());
        await webhooks.settle();
      } finally {
        state.close();
      }
      const json = await world.cli('webhooks', 'deliveries', 'web', '--json');
      expect(json.exitCode, json.stderr).to.equal(0);
      const list = JSON.parse(json.stdout) as Record<string, unknown>[];
      expect(list.map((d) => [d.event, d.status, d.attempts, d.responseCode, d.error])).to.deep.equal([
        ['build.succeeded', 'failed', 1, 500, 'HTTP 500: nope'],
        ['build.started', 'delivered', 1, 200, null],
      ]);
      expect(Object.keys(list[0] as object).sort()).to.deep.equal(['attempts', 'createdAt', 'error', 'event', 'finishedAt', 'id', 'responseCode', 'status', 'url']);
      expect(list[0]?.url).to.equal(`http://***@127.0.0.1:${hooks.port}/hook`);
      const text = await world.cli('webhooks', 'deliveries', 'web');
      expect(text.exitCode, text.stderr).to.equal(0);
      expect(text.lines[0]).to.match(/ build\.succeeded +failed +1 try +HTTP 500 +http:\/\/\*\*\*@127\.0\.0\.1:[0-9]+\/hook$/);
      expect(text.lines[1]).to.equal('    HTTP 500: nope');
      expect(text.lines[2]).to.match(/ build\.started +delivered +1 try +HTTP 200 /);
      for (const output of [json.stdout, text.stdout]) {
        expect(output).not.to.include('hunter2');
        expect(output).not.to.include(SECRET);
      }
      expect((await world.cli('webhooks', 'deliveries', 'nothing-here')).stderr).to.include('repository nothing-here does not exist or you have no access to it');
    } finally {
      await hooks.close();
      world.remove();
    }
  });
});

describe('webhooks of a local command', function () {
  this.timeout(60_000);

  it('waits for its deliveries before it exits; a Ctrl-C meanwhile gives up on them, recorded failed', async () => {
    const hooks = await Receiver.start(() => 'hang');
    const world = new World({ apps: { webhooks: [{ url: hooks.url(), secret: SECRET, events: ['build.succeeded'] }] }, server: { webhooks: { timeout: 60 } } });
    try {
      const app = await world.app('web');
      await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' } }) });
      const child = execa('node', [join(PROJECT, 'bin/upaas.js'), '-c', world.configFile, 'build', 'web'], { cwd: world.dir, reject: false, all: true });
      let output = '';
      child.all?.on('data', (chunk: Buffer) => {
        output += String(chunk);
      });
      await eventually(() => output.includes('upaas: sending webhook deliveries (Ctrl-C gives up on them)'), 'the notice', 30_000);
      expect(output).to.match(/-----> Package [0-9a-f]{64} .* is now current for web/);
      expect(hooks.received).to.have.length(1);
      child.kill('SIGINT');
      const result = await child;
      expect(result.exitCode, output).to.equal(0);
      const list = JSON.parse((await world.cli('webhooks', 'deliveries', 'web', '--json')).stdout) as Record<string, unknown>[];
      expect(list.map((d) => [d.event, d.status, d.attempts, d.error])).to.deep.equal([
        ['build.succeeded', 'failed', 1, 'the command was interrupted before it was delivered'],
      ]);
    } finally {
      await hooks.close();
      world.remove();
    }
  });
});

describe('webhooks of a real server', function () {
  this.timeout(180_000);
  let world: World;
  let server: TestServer;
  let admin: KeyPair;
  let dev: KeyPair;
  let hooks: Receiver;
  let closedPort: number;

  before(async () => {
    [admin, dev] = await Promise.all([makeKey('admin'), makeKey('dev')]);
  });

  beforeEach(async () => {
    hooks = await Receiver.start();
    closedPort = await freePort();
    world = new World({
      apps: {
        webhooks: [
          { url: hooks.url('/ok'), secret: SECRET },
          { url: `http://127.0.0.1:${closedPort}/down`, secret: OTHER_SECRET, events: ['build.succeeded'] },
        ],
      },
      server: { webhooks: { timeout: 2, tries: 3, backoff: 1 } },
    });
    expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    expect((await world.cliWithInput(dev.publicKey, 'users', 'add', 'dev')).exitCode).to.equal(0);
    server = new TestServer(world);
    await server.start();
  });

  afterEach(async () => {
    await hooks.close();
    expect(await server.tearDown()).to.deep.equal([]);
  });

  const bodies = () => hooks.received.map((r) => JSON.parse(r.body.toString('utf8')) as AppEvent);

  const deliveries = async (): Promise<Record<string, unknown>[]> => {
    const result = await server.ssh(admin, ['webhooks', 'deliveries', 'web', '--json']);
    expect(result.exitCode, result.stderr).to.equal(0);
    return JSON.parse(result.stdout) as Record<string, unknown>[];
  };

  it("a push's build reaches the receiver signed; a receiver that is down is tried 3 times and recorded failed; a local build sends its events before it exits", async () => {
    expect((await server.ssh(admin, ['repos', 'create', 'web'])).exitCode).to.equal(0);
    const dir = join(world.dir, 'clients', 'web');
    mkdirSync(dir, { recursive: true });
    const env = server.clientEnv(admin);
    const git = (...args: string[]) => execa('git', args, { cwd: dir, env, reject: false, all: true });
    await git('init', '-q', '-b', 'main');
    writeFileSync(join(dir, '.upaas.yml'), metadata({ interpreter: { type: 'static' } }));
    await git('add', '-A');
    await git('commit', '-qm', 'first');
    await git('remote', 'add', 'upaas', server.url('web'));
    const pushed = await git('push', 'upaas', 'main');
    expect(pushed.exitCode, String(pushed.all)).to.equal(0);
    expect(String(pushed.all)).to.match(/-----> Package [0-9a-f]{64} .* is now current for web/);

    await eventually(() => hooks.received.length >= 3, 'build.started, build.succeeded and release.created');
    expect(hooks.received.every((r) => signedBy(SECRET, r)), 'every body signed').to.equal(true);
    expect(hooks.received.every((r) => r.headers['x-upaas-event'] === (JSON.parse(r.body.toString('utf8')) as AppEvent).event)).to.equal(true);
    expect(new Set(hooks.received.map((r) => r.headers['x-upaas-delivery'])).size).to.equal(3);
    const events = bodies();
    expect(events.map((e) => e.event).sort()).to.deep.equal(['build.started', 'build.succeeded', 'release.created']);
    expect(events.every((e) => e.app === 'web')).to.equal(true);
    const [current] = JSON.parse((await server.ssh(admin, ['packages', 'web', '--json'])).stdout) as { id: string; current: boolean }[];
    const succeeded = events.find((e) => e.event === 'build.succeeded') as AppEvent;
    expect(succeeded.build).to.deep.include({ id: 1, status: 'succeeded', fresh: true });
    expect(succeeded.package?.id).to.equal(current?.id);
    expect(events.find((e) => e.event === 'release.created')?.release).to.deep.include({ version: 1, kind: 'build', status: 'ok' });

    await eventually(async () => (await deliveries()).every((d) => d.status !== 'pending'), 'every delivery over', 30_000);
    const list = await deliveries();
    const down = list.filter((d) => String(d.url).includes('/down'));
    expect(down).to.have.length(1);
    expect(down[0]).to.deep.include({ event: 'build.succeeded', status: 'failed', attempts: 3, responseCode: null });
    expect(String(down[0]?.error)).to.include('ECONNREFUSED');
    expect(list.filter((d) => String(d.url).includes('/ok')).map((d) => [d.status, d.attempts, d.responseCode])).to.deep.equal([
      ['delivered', 1, 200],
      ['delivered', 1, 200],
      ['delivered', 1, 200],
    ]);
    expect((await server.ssh(dev, ['webhooks', 'deliveries', 'web', '--json'])).stderr).to.include('only admins may run this command');

    // A local `upaas build` is its own process: it sends its events before it exits.
    hooks.received.length = 0;
    const local = await world.cli('build', 'web');
    expect(local.exitCode, local.stderr).to.equal(0);
    expect(bodies().map((e) => e.event).sort()).to.deep.equal(['build.started', 'build.succeeded', 'release.created']);
    expect(bodies().every((e) => e.event === 'release.created' || e.build?.id === 2)).to.equal(true);
    const after = await deliveries();
    expect(after.filter((d) => d.status === 'pending')).to.deep.equal([]);
    expect(after.filter((d) => String(d.url).includes('/down')).map((d) => [d.status, d.attempts])).to.deep.equal([
      ['failed', 3],
      ['failed', 3],
    ]);
  });
});
