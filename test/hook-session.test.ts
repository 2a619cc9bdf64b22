/**
 * The post-receive shim and its session: the real shim (hooks/post-receive)
 * run the way receive-pack runs it, against a real session.
 */
import { constants, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { text } from 'node:stream/consumers';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { parseConfig } from '../src/config/config.ts';
import { HookSessionFactory, parseRequest } from '../src/server/hook-session.ts';
import { BuildQueue } from '../src/core/queue.ts';
import { PROJECT } from './helpers/world.ts';

const SHIM = join(PROJECT, 'hooks/post-receive');
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('post-receive shim and hook sessions', function () {
  this.timeout(30_000);
  let dir: string;
  let requested: { app: string; revision?: string; fresh?: boolean; requestedBy?: string }[];
  let factory: HookSessionFactory;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-hooks-'));
    requested = [];
    // The queue is real; its runner stands in for the builder (built elsewhere) and says what it got.
    const queue = new BuildQueue(async (request) => {
      requested.push(request);
      request.onLine?.(`-----> building ${request.revision} for ${request.requestedBy}`);
      return { ok: false, buildId: 1, error: new Error('not built here') as never, timings: { totalMs: 0, commandMs: 0 } };
    }, 1);
    factory = new HookSessionFactory(dir, parseConfig({ paths: { repos: join(dir, 'repos'), state: join(dir, 'state') } }, null), queue);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const runShim = (env: Record<string, string>, stdin: string) =>
    execa(SHIM, [], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, extendEnv: false, input: stdin, reject: false });

  it('hands the ref updates and push options over and relays the answer; the session knows the app and the pusher', async () => {
    const session = await factory.open('myapp', 'alice');
    const options = ['fresh', '$(touch /tmp/upaas-pwned)', 'x; rm -rf /', "it's \\ odd", 'backend'];
    const env: Record<string, string> = { UPAAS_HOOK_DIR: session.dir, GIT_PUSH_OPTION_COUNT: String(options.length) };
    options.forEach((option, i) => {
      env[`GIT_PUSH_OPTION_${i}`] = option;
    });
    const result = await runShim(env, `${A} ${B} refs/heads/other\n${'0'.repeat(40)} ${B} refs/heads/main\n`);
    await session.close();
    expect(result.exitCode).to.equal(0);
    const lines = String(result.stdout).split('\n');
    for (const option of options.slice(1)) expect(lines).to.include(`-----> warning: unknown push option ${JSON.stringify(option)} ignored (known: fresh, interpreter=VERSION)`);
    expect(lines).to.include('-----> refs/heads/other stored; only main builds');
    expect(lines).to.include(`-----> building ${B} for alice`);
    expect(requested).to.have.length(1);
    expect(requested[0]).to.include({ app: 'myapp', revision: B, fresh: true, requestedBy: 'alice' });
    expect(readdirSync('/tmp').includes('upaas-pwned'), 'an option is data, never code').to.equal(false);
  });

  it('refuses a request line it does not know, and builds nothing', async () => {
    expect(() => parseRequest(`ref ${A} ${B} refs/heads/main\nrepo /etc\n`)).to.throw('unexpected line "repo /etc"');
    expect(() => parseRequest(`ref ${A} not-a-sha refs/heads/main\n`)).to.throw('unexpected line');
    const session = await factory.open('myapp', 'alice');
    // The answer is opened before the request is written, as the shim does: a
    // FIFO that nobody holds open any more keeps no data for a late reader.
    const answer = new Socket({ fd: openSync(join(session.dir, 'out'), constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
    const answered = text(answer);
    writeFileSync(join(session.dir, 'in'), `pusher root\nend\n`);
    expect(await answered).to.equal('!     system error: bad request from the post-receive hook (unexpected line "pusher root")\n');
    await session.close();
    expect(requested).to.deep.equal([]);
  });

  it('outside the server (no session) it builds nothing and says so', async () => {
    const result = await runShim({}, `${A} ${B} refs/heads/main\n`);
    expect(result.exitCode).to.equal(0);
    expect(String(result.stdout)).to.equal('-----> upaas: this push did not come through the upaas server; nothing is built');
  });

  it('removes the session folder when the push ends', async () => {
    const session = await factory.open('myapp', 'alice');
    await session.close();
    expect(readdirSync(dir).filter((entry) => entry === session.dir.split('/').pop())).to.deep.equal([]);
  });
});
