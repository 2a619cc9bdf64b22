/**
 * What a client may hold of the server, over SSH and HTTP: connections, the
 * time to log in or to send a request, channels, git processes, and how fast
 * it may guess logins. Real server, raw sockets, real ssh and an ssh2 client.
 */
import { request as httpRequest } from 'node:http';
import { type Socket, connect } from 'node:net';
import { expect } from 'chai';
import { execa } from 'execa';
import ssh2 from 'ssh2';
import { readFileSync } from 'node:fs';
import { type KeyPair, TestServer, makeKey } from './helpers/server.ts';
import { World } from './helpers/world.ts';

/** How long until `socket` is closed by the other side (or `limitMs`, whichever comes first). */
function closedWithin(socket: Socket, limitMs: number): Promise<number | null> {
  const started = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), limitMs);
    socket.on('error', () => undefined);
    // Read what comes: a paused socket would never see the end of the stream.
    socket.resume();
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

const open = (port: number, from?: string) =>
  new Promise<Socket>((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: from });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });

/** The first bytes the server sends on `socket` within `ms`, or '' when it sends none. */
const firstBytes = (socket: Socket, ms: number) =>
  new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve(''), ms);
    socket.once('data', (chunk) => {
      clearTimeout(timer);
      resolve(String(chunk));
    });
    socket.once('close', () => resolve(''));
  });

describe('transport limits', function () {
  this.timeout(120_000);
  let world: World;
  let server: TestServer;
  let admin: KeyPair;
  let dev: KeyPair;
  let stranger: KeyPair;
  let devToken: string;
  let adminToken: string;

  before(async () => {
    [admin, dev, stranger] = await Promise.all([makeKey('admin'), makeKey('dev'), makeKey('stranger')]);
  });

  beforeEach(async () => {
    world = new World();
    expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    server = new TestServer(world);
    await server.start({
      git_per_user: 1,
      ssh: { login_grace: 2, max_sessions: 3, max_connections_per_address: 4 },
      http: { headers_timeout: 2, body_timeout: 2 },
    });
    expect((await server.ssh(admin, ['users', 'add', 'dev'], dev.publicKey)).exitCode).to.equal(0);
    expect((await server.ssh(admin, ['repos', 'create', 'app'])).exitCode).to.equal(0);
    expect((await server.ssh(admin, ['repos', 'grant', 'app', 'dev', 'write'])).exitCode).to.equal(0);
    const token = async (user: string) => (await server.ssh(admin, ['tokens', 'create', '--user', user])).stdout.trim().split('\n').pop() as string;
    devToken = await token('dev');
    adminToken = await token('admin');
  });

  afterEach(async () => {
    expect(await server.tearDown()).to.deep.equal([]);
  });

  const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;

  /** A GET from address `from`: its status and how long the answer took. */
  function get(path: string, auth: string | undefined, from = '127.0.0.1'): Promise<{ status: number; ms: number }> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: server.httpPort, path, localAddress: from, headers: auth ? { Authorization: auth } : {}, agent: false },
        (response) => {
          response.resume();
          response.on('end', () => resolve({ status: response.statusCode ?? 0, ms: Date.now() - started }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  it('SSH: a connection that does not log in within server.ssh.login_grace is dropped, even one that never says hello', async () => {
    const silent = await open(server.sshPort);
    const hello = await open(server.sshPort);
    hello.write('SSH-2.0-test_client\r\n');
    const [silentMs, helloMs] = await Promise.all([closedWithin(silent, 10_000), closedWithin(hello, 10_000)]);
    expect(silentMs, 'silent').to.be.a('number').within(1500, 6000);
    expect(helloMs, 'hello only').to.be.a('number').within(1500, 6000);
    expect(server.output.join('')).to.include('not logged in within 2s');
    // A client that logs in in time is not cut off afterwards.
    expect((await server.ssh(dev, ['whoami'])).stdout.trim()).to.equal('dev');
  });

  it('SSH: at most server.ssh.max_connections_per_address connections from one address; others still get in', async () => {
    const held = await Promise.all([1, 2, 3, 4].map(() => open(server.sshPort)));
    const greetings = await Promise.all(held.map((socket) => firstBytes(socket, 3000)));
    for (const greeting of greetings) expect(greeting).to.match(/^SSH-2\.0-/);
    const fifth = await open(server.sshPort);
    const [refused, closedMs] = await Promise.all([firstBytes(fifth, 1500), closedWithin(fifth, 3000)]);
    expect(refused, 'no greeting for the fifth').to.equal('');
    expect(closedMs).to.be.a('number');
    const elsewhere = await open(server.sshPort, '127.0.0.2');
    expect(await firstBytes(elsewhere, 3000), 'another address').to.match(/^SSH-2\.0-/);
    for (const socket of [...held, elsewhere]) socket.destroy();
    expect(server.output.join('')).to.include('server.ssh.max_connections_per_address');
  });

  it('SSH: at most server.ssh.max_sessions channels per connection', async () => {
    const client = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', reject);
      client.connect({ host: '127.0.0.1', port: server.sshPort, username: 'git', privateKey: readFileSync(dev.privateFile) });
    });
    try {
      // `keys add` reads its standard input to the end: each channel stays open.
      const exec = () =>
        new Promise<ssh2.ClientChannel>((resolve, reject) =>
          client.exec('keys add', (error, channel) => {
            if (error) return reject(error);
            // Read what comes, so that the channel can end.
            channel.resume();
            channel.stderr.resume();
            resolve(channel);
          }),
        );
      const channels = [await exec(), await exec(), await exec()];
      let refused: unknown = null;
      await exec().then((channel) => channel.close(), (error: unknown) => (refused = error));
      expect(String(refused)).to.match(/open failure|Channel open failure/i);
      const closed = new Promise((resolve) => (channels[0] as ssh2.ClientChannel).once('close', resolve));
      (channels[0] as ssh2.ClientChannel).close();
      await closed;
      const again = await exec();
      again.close();
      for (const channel of channels) channel.close();
    } finally {
      client.end();
    }
  });

  it('HTTP: a client that sends its headers too slowly is cut off (server.http.headers_timeout)', async () => {
    const socket = await open(server.httpPort);
    socket.write('GET /app.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => socket.write('X-Slow: 1\r\n'), 500);
    const ms = await closedWithin(socket, 10_000);
    clearInterval(drip);
    expect(ms).to.be.a('number').below(6000);
  });

  it('HTTP: a request body that trickles is cut and its git process ends; a user has server.git_per_user git processes at most', async () => {
    const socket = await open(server.httpPort);
    socket.write(
      `POST /app.git/git-receive-pack HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic('dev', devToken)}\r\n` +
        'Content-Type: application/x-git-receive-pack-request\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    const drip = setInterval(() => socket.write('1\r\n0\r\n'), 500);
    // Meanwhile dev's one git slot is taken; admin's are not.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await get('/app.git/info/refs?service=git-upload-pack', basic('dev', devToken))).status).to.equal(429);
    expect((await get('/app.git/info/refs?service=git-upload-pack', basic('admin', adminToken))).status).to.equal(200);
    const ms = await closedWithin(socket, 15_000);
    clearInterval(drip);
    expect(ms, 'cut within a few body_timeout windows').to.be.a('number').below(8000);
    expect(server.output.join('')).to.include('its body brought less than 1024 bytes in 2s');
    expect(String((await execa('ps', ['-eo', 'args'])).stdout)).to.not.include('git http-backend');
    expect((await get('/app.git/info/refs?service=git-upload-pack', basic('dev', devToken))).status, 'the slot is free again').to.equal(200);
  });

  it('failed logins are answered later and later per address, logged, and never slow down other clients', async () => {
    const path = '/app.git/info/refs?service=git-upload-pack';
    const bad = basic('dev', 'upaas_000000000000_guess');
    const guesses = Promise.all([1, 2, 3, 4, 5, 6, 7].map(() => get(path, bad, '127.0.0.2')));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const other = await get(path, basic('dev', devToken), '127.0.0.1');
    const otherBad = await get(path, bad, '127.0.0.1');
    const answered = (await guesses).map((g) => g.ms).sort((a, b) => a - b);
    for (const g of await guesses) expect(g.status).to.equal(401);
    expect(answered[6], 'the 7th wrong login waits 4 s').to.be.at.least(3500);
    expect(answered[0], 'the first ones are answered at once').to.be.below(1000);
    expect(other.status).to.equal(200);
    expect(other.ms, 'another address is not slowed').to.be.below(1500);
    expect(otherBad.ms, "another address's first wrong login is not slowed").to.be.below(1500);
    expect(server.output.join('')).to.include('failed login from 127.0.0.2: http: wrong user name or token');
    // A request without any login is how every git client starts: not a failure.
    const anonymous = await get(path, undefined, '127.0.0.3');
    expect(anonymous.status).to.equal(401);
    expect(server.output.join('')).to.not.include('failed login from 127.0.0.3');
  });

  it('SSH logins with an unknown key are slowed per address too', async () => {
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const started = Date.now();
      const r = await server.ssh(stranger, ['whoami'], '', { bind: '127.0.0.4' });
      expect(r.exitCode).to.equal(255);
      times.push(Date.now() - started);
    }
    const started = Date.now();
    expect((await server.ssh(dev, ['whoami'])).stdout.trim()).to.equal('dev');
    const otherMs = Date.now() - started;
    expect(times[5], 'the 6th try waits for its refusal').to.be.at.least((times[0] as number) + 800);
    expect(otherMs).to.be.below(times[5] as number);
    expect(server.output.join('')).to.include('failed login from 127.0.0.4: ssh: no key accepted');
  });
});
