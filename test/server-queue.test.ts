/** Builds started over SSH go through the server's queue like pushes. */
import { expect } from 'chai';
import { type KeyPair, TestServer, makeKey } from './helpers/server.ts';
import { World, metadata } from './helpers/world.ts';

describe('server build queue', function () {
  this.timeout(180_000);
  let world: World;
  let server: TestServer;
  let admin: KeyPair;

  before(async () => {
    admin = await makeKey('admin');
    world = new World();
    expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    server = new TestServer(world);
    await server.start();
  });

  after(async () => {
    expect(await server.tearDown()).to.deep.equal([]);
  });

  it('an SSH build of an app that is building waits its turn; a local build meanwhile is refused as busy', async () => {
    const app = await world.app('queued');
    await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: 'echo slow-start; sleep 4' } } }) });
    const first = server.ssh(admin, ['build', 'queued']);
    const seen = Date.now();
    while (!(await world.cli('builds', 'queued')).stdout.includes('running')) {
      if (Date.now() - seen > 30_000) throw new Error('the first build never started');
      await new Promise((r) => setTimeout(r, 100));
    }
    const [second, local] = await Promise.all([server.ssh(admin, ['build', 'queued', '--fresh']), world.cli('build', 'queued')]);
    const done = await first;
    expect(done.exitCode, done.stdout + done.stderr).to.equal(0);
    expect(second.exitCode, second.stdout + second.stderr).to.equal(0);
    expect(second.stdout).to.match(/-----> waiting: build \d+ of queued is running/);
    expect(second.stdout).to.include('(fresh)');
    expect(second.stdout.trim().split('\n').pop()).to.match(/is now current for queued$/);
    expect(local.exitCode).to.equal(1);
    expect(local.stderr).to.match(/build \d+ of queued is running/);
  });
});
