/**
 * Retention as an operation of the core (core/retention.ts) on a real state
 * and storage: what a running build starts from stays until it ends, and a
 * package made current again by a rollback is never deleted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { parseConfig } from '../src/config/config.ts';
import { findPackage, rollBack } from '../src/core/packages.ts';
import { CoreError } from '../src/core/errors.ts';
import { applyRetention } from '../src/core/retention.ts';
import type { Services } from '../src/core/services.ts';
import { State } from '../src/state/state.ts';
import { LocalStorage } from '../src/storage/local.ts';

/** A rollback's deploy lines: none here (no deploy commands). */
const quiet = { step: () => undefined, output: () => undefined };

describe('retention and package ids (core)', function () {
  this.timeout(30_000);
  let dir: string;
  let services: Services;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-retention-'));
    const config = parseConfig(
      { paths: { repos: join(dir, 'repos'), state: join(dir, 'state'), workdir: join(dir, 'work') }, apps: { packages_per_app: 2 } },
      null,
    );
    services = { config, state: State.open(config.paths.state), storage: new LocalStorage(join(dir, 'storage')) };
  });
  afterEach(() => {
    services.state.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A finished build of `app` with a stored package made current; `id` names the package (a real one's is its hash). */
  async function built(app: string, id: string): Promise<string> {
    const { state, storage } = services;
    const build = state.builds.start(app, { fresh: true });
    const stored = await storage.put(`packages/${app}/${id}.tar.zst`, Readable.from([`package ${id}`]));
    state.packages.addAsCurrent(
      {
        id, app, parent: null, fresh: true, revision: 'a'.repeat(40), author: null, date: null, description: null,
        changelog: [], interpreter: { type: 'static', version: 'any' }, bytes: stored.bytes, storageKey: stored.key,
        compression: 'zstd', createdAt: new Date(Date.now() + state.packages.list(app).length).toISOString(), metadata: {}, buildId: build.id,
      },
      'alice',
    );
    state.builds.finish(build.id, { status: 'succeeded', packageId: id });
    return id;
  }

  const kept = async (app: string) => (await services.storage.list(`packages/${app}`)).map((o) => o.key.split('/').pop()?.slice(0, 4)).sort();

  it('keeps what a running build starts from until it ends', async () => {
    for (const id of ['aaaa000', 'bbbb000', 'cccc000']) await built('web', id.padEnd(64, '0'));
    const running = services.state.builds.start('web', { fresh: false });
    services.state.builds.update(running.id, { basePackage: 'aaaa000'.padEnd(64, '0') });
    expect((await applyRetention(services, 'web')).packages).to.deep.equal([]);
    expect(await kept('web')).to.deep.equal(['aaaa', 'bbbb', 'cccc']);
    services.state.builds.finish(running.id, { status: 'failed', errorKind: 'user', errorMessage: 'x' });
    expect((await applyRetention(services, 'web')).packages).to.deep.equal(['aaaa000'.padEnd(64, '0')]);
    expect(await kept('web')).to.deep.equal(['bbbb', 'cccc']);
  });

  it('never deletes the current package, also after a rollback to an old one', async () => {
    for (const id of ['aaaa000', 'bbbb000']) await built('web', id.padEnd(64, '0'));
    await rollBack(services, 'web', 'aaaa000', 'alice', quiet);
    for (const id of ['cccc000', 'dddd000']) await built('web', id.padEnd(64, '0'));
    await rollBack(services, 'web', 'cccc000', 'alice', quiet);
    // Newest two (dddd, cccc); the current one is cccc; aaaa and bbbb go.
    expect(await kept('web')).to.deep.equal(['cccc', 'dddd']);
    expect(services.state.releases.list('web').map((r) => `${r.version}:${r.kind}:${r.package.slice(0, 4)}:${r.by}`)).to.deep.equal([
      '6:rollback:cccc:alice',
      '5:build:dddd:alice',
      '4:build:cccc:alice',
      '3:rollback:aaaa:alice',
      '2:build:bbbb:alice',
      '1:build:aaaa:alice',
    ]);
  });

  it('a build identical to a kept package makes that one current as a new release, and keeps its file', async () => {
    const first = await built('web', 'aaaa000'.padEnd(64, '0'));
    await built('web', 'bbbb000'.padEnd(64, '0'));
    services.state.packages.markFileDeleted('web', first);
    await built('web', first);
    expect(services.state.packages.current('web')).to.include({ id: first, file: true });
    expect(services.state.releases.list('web').map((r) => r.package.slice(0, 4))).to.deep.equal(['aaaa', 'bbbb', 'aaaa']);
  });

  it('finds packages by unique prefixes of 7+ hex characters only', async () => {
    const one = await built('web', 'abcdef1'.padEnd(64, '1'));
    const two = await built('web', 'abcdef1'.padEnd(64, '2'));
    const refusal = (given: string) => {
      try {
        findPackage(services, 'web', given);
      } catch (error) {
        expect(error).to.be.instanceOf(CoreError);
        return `${(error as CoreError).status} ${(error as Error).message}`;
      }
      throw new Error(`${given} was not refused`);
    };
    expect(findPackage(services, 'web', 'abcdef11').id).to.equal(one);
    expect(findPackage(services, 'web', two).id).to.equal(two);
    expect(refusal('abcdef1')).to.equal('409 package id abcdef1 is ambiguous: 2 packages of web start with it (abcdef122222, abcdef111111)');
    expect(refusal('abcdef')).to.equal('400 invalid package id "abcdef": expected a package id or a unique prefix of at least 7 hex characters');
    expect(refusal('abcdef1_')).to.match(/^400 /);
    expect(refusal('ABCDEF11')).to.match(/^400 /);
    expect(refusal('abcdef0')).to.equal('404 web has no package abcdef0');
    expect(refusal(`${one}0`)).to.match(/^400 /);
  });
});
