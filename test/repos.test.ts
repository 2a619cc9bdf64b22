/**
 * Repo operations of the core (core/repos.ts) on a real state, storage and
 * repos folder: what a deletion removes, a deletion a crash cut short, and
 * records under names no repo can have.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { execa } from 'execa';
import { parseConfig } from '../src/config/config.ts';
import { createRepository, deleteRepository, sweepDeletions } from '../src/core/repos.ts';
import type { Services } from '../src/core/services.ts';
import { readFileAt, repoNameFrom, resolveRevision } from '../src/git/repos.ts';
import { State } from '../src/state/state.ts';
import { LocalStorage } from '../src/storage/local.ts';

describe('repo operations (core)', function () {
  this.timeout(30_000);
  let dir: string;
  let services: Services;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-repos-'));
    const config = parseConfig({ paths: { repos: join(dir, 'repos'), state: join(dir, 'state'), workdir: join(dir, 'work') } }, null);
    services = { config, state: State.open(config.paths.state), storage: new LocalStorage(join(dir, 'storage')) };
  });
  afterEach(() => {
    services.state.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A finished build of `app` with a stored package and a log file, as a build leaves them. */
  async function builtOnce(app: string): Promise<string> {
    const { state, storage, config } = services;
    const build = state.builds.start(app, { fresh: true });
    const stored = await storage.put((sha) => `packages/${app}/${sha}.tar.zst`, Readable.from([`package of ${app} ${build.id}`]));
    state.packages.addAsCurrent({
      id: stored.sha256, app, parent: null, fresh: true, revision: 'a'.repeat(40), author: null, date: null, description: null,
      changelog: [], interpreter: { type: 'static', version: 'any' }, bytes: stored.bytes, storageKey: stored.key,
      compression: 'zstd', createdAt: new Date().toISOString(), metadata: {}, buildId: build.id,
    }, null);
    state.builds.finish(build.id, { status: 'succeeded', packageId: stored.sha256, log: 'log' });
    mkdirSync(join(config.paths.state, 'logs', app), { recursive: true });
    writeFileSync(join(config.paths.state, 'logs', app, `${build.id}.log`), 'log');
    return stored.key;
  }

  it('a name never ends in .git: "a.git.git" is refused rather than taken for the app "a.git"', () => {
    expect(repoNameFrom('a.git')).to.equal('a');
    expect(repoNameFrom('a')).to.equal('a');
    expect(() => repoNameFrom('a.git.git')).to.throw('invalid app name');
  });

  it('deleting removes exactly what the records name: a storage object they do not name stays', async () => {
    await createRepository(services, 'shop');
    const key = await builtOnce('shop');
    const stranger = await services.storage.put('packages/shop/not-a-record.tar.zst', Readable.from(['someone else']));
    services.state.webhooks.add({ id: 'd1', app: 'shop', event: 'build.started', url: 'http://x.invalid/', payload: '{}', createdAt: new Date().toISOString() }, 10);
    const gone = await deleteRepository(services, 'shop', 'admin');
    expect(services.state.webhooks.list('shop'), 'its webhook deliveries go too').to.deep.equal([]);
    expect(gone).to.include({ name: 'shop', builds: 1, packages: 1, deletedBy: 'admin' });
    expect(await services.storage.exists(key)).to.equal(false);
    expect(await services.storage.exists(stranger.key)).to.equal(true);
    expect(existsSync(join(services.config.paths.state, 'logs', 'shop'))).to.equal(false);
    expect(services.state.apps.known('shop')).to.equal(false);
    expect(services.state.apps.deleted()[0]).to.include({ name: 'shop', builds: 1 });
  });

  it('deleting is refused while the app builds, and the repo stays', async () => {
    await createRepository(services, 'shop');
    services.state.builds.start('shop', { fresh: true });
    const refused = await deleteRepository(services, 'shop', 'admin').then(() => null, (error: unknown) => error as Error);
    expect(refused?.message).to.match(/build \d+ of shop is running/);
    expect(existsSync(join(dir, 'repos', 'shop.git'))).to.equal(true);
    expect(services.state.apps.known('shop')).to.equal(true);
  });

  it('once the records are gone the repo stays gone, even when removing a file fails', async () => {
    await createRepository(services, 'shop');
    await builtOnce('shop');
    const storage = services.storage;
    services = { ...services, storage: Object.assign(Object.create(storage) as LocalStorage, { delete: async () => Promise.reject(new Error('disk gone')) }) };
    const failed = await deleteRepository(services, 'shop', 'admin').then(() => null, (error: unknown) => error as Error);
    expect(failed?.message).to.equal('disk gone');
    expect(services.state.apps.known('shop')).to.equal(false);
    expect(existsSync(join(dir, 'repos', 'shop.git')), 'no repo without its records').to.equal(false);
    // What is left is the moved-away folder, which the next start removes.
    await sweepDeletions({ ...services, storage }, () => undefined);
    expect(readdirSync(join(dir, 'repos'))).to.deep.equal([]);
  });

  it('a deletion cut short by a crash is finished at the next start; meanwhile the name cannot be taken again', async () => {
    await createRepository(services, 'shop');
    const key = await builtOnce('shop');
    services.state.users.add('bob');
    services.state.users.grant('shop', 'bob', 'read');
    // What deleteRepository had done when the process died: the repo moved out of reach, nothing else.
    renameSync(join(dir, 'repos', 'shop.git'), join(dir, 'repos', '.deleted-shop-0123456789ab'));
    let refused: unknown = null;
    await createRepository(services, 'shop').catch((error: unknown) => (refused = error));
    expect(String(refused)).to.include('records of a deleted repository shop are left');
    const lines: string[] = [];
    await sweepDeletions(services, (line) => lines.push(line));
    expect(readdirSync(join(dir, 'repos'))).to.deep.equal([]);
    expect(services.state.apps.known('shop')).to.equal(false);
    expect(services.state.users.grants('shop')).to.deep.equal([]);
    expect(await services.storage.exists(key)).to.equal(false);
    expect(lines.join('\n')).to.include('finished the deletion of repository shop');
    await createRepository(services, 'shop');
    expect(services.state.packages.current('shop')).to.equal(null);
  });

  it('records under a name no repo can have are forgotten at start', async () => {
    const key = await builtOnce('a.git');
    await createRepository(services, 'a');
    await sweepDeletions(services, () => undefined);
    expect(services.state.apps.names()).to.not.include('a.git');
    expect(await services.storage.exists(key)).to.equal(false);
    expect(existsSync(join(dir, 'repos', 'a.git')), 'the repo of a stays').to.equal(true);
  });

  it('a full ref name resolves to that ref only: a tag named like the deploy branch is not the branch', async () => {
    const bare = join(dir, 'names.git');
    await execa('git', ['init', '--quiet', '--bare', bare]);
    const env = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' };
    const tree = String((await execa('git', ['--git-dir', bare, 'mktree'], { input: '' })).stdout);
    const commit = String((await execa('git', ['--git-dir', bare, 'commit-tree', '-m', 'x', tree], { env })).stdout);
    await execa('git', ['--git-dir', bare, 'update-ref', 'refs/tags/refs/heads/main', commit]);
    await resolveRevision(bare, 'refs/heads/main').then(
      () => expect.fail('the tag passed for the branch'),
      (error: unknown) => expect((error as Error).message).to.equal('revision refs/heads/main does not exist in the repository'),
    );
    await execa('git', ['--git-dir', bare, 'update-ref', 'refs/heads/main', commit]);
    expect(await resolveRevision(bare, 'refs/heads/main')).to.equal(commit);
  });

  it("reads a file at a revision byte for byte: its last newline too", async () => {
    const bare = join(dir, 'bytes.git');
    await execa('git', ['init', '--quiet', '--bare', bare]);
    const env = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' };
    const blob = String((await execa('git', ['--git-dir', bare, 'hash-object', '-w', '--stdin'], { input: 'a: 1\n\n' })).stdout);
    const tree = String((await execa('git', ['--git-dir', bare, 'mktree'], { input: `100644 blob ${blob}\t.upaas.yml\n` })).stdout);
    const commit = String((await execa('git', ['--git-dir', bare, 'commit-tree', '-m', 'x', tree], { env })).stdout);
    expect((await readFileAt(bare, commit, '.upaas.yml'))?.toString()).to.equal('a: 1\n\n');
  });
});
