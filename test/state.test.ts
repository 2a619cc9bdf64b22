/** State: migrations, one live build per app, builds left by dead processes. */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { sweepInterrupted } from '../src/builder/sweep.ts';
import { parseConfig } from '../src/config/config.ts';
import { BusyError } from '../src/state/builds.ts';
import { processIdentity } from '../src/state/process-identity.ts';
import Database from 'better-sqlite3';
import { migrate } from '../src/state/db.ts';
import { State } from '../src/state/state.ts';

describe('state', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-state-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('migrates once and reopens', () => {
    State.open(dir).close();
    const state = State.open(dir);
    expect(state.db.pragma('user_version', { simple: true })).to.equal(8);
    expect(statSync(dir).mode & 0o777, 'the state folder is root-only').to.equal(0o700);
    state.close();
  });

  it('migration 5 gives an app that has a current package its first release', () => {
    const db = new Database(join(dir, 'old.sqlite'));
    migrate(db, 4);
    db.prepare("INSERT INTO apps (name, current_package, created_at) VALUES ('web', 'p2', 't0')").run();
    db.prepare("INSERT INTO builds (app, status, fresh, requested_by, started_at) VALUES ('web', 'succeeded', 1, 'alice', 't1')").run();
    for (const id of ['p1', 'p2']) {
      db.prepare(
        `INSERT INTO packages (app, id, fresh, revision, changelog, interpreter_type, interpreter_version, bytes, storage_key, compression, created_at, metadata, build_id)
         VALUES ('web', ?, 1, 'r', '[]', 'static', 'any', 1, ?, 'zstd', ?, '{}', 1)`,
      ).run(id, `packages/web/${id}`, `t-${id}`);
    }
    migrate(db);
    const state = new State(db);
    expect(state.releases.list('web')).to.deep.equal([{ app: 'web', version: 1, package: 'p2', kind: 'build', by: 'alice', createdAt: 't-p2', build: 1, status: 'ok', failure: null }]);
    expect(state.packages.list('web').map((p) => [p.id, p.file, p.current])).to.deep.equal([
      ['p2', true, true],
      ['p1', true, false],
    ]);
    state.close();
  });

  it('a failed deploy puts the package before back only while its release is still current', () => {
    const state = State.open(dir);
    const pkg = (id: string) => ({
      app: 'web', id, parent: null, fresh: true, revision: 'r', author: null, date: null, description: null, changelog: [],
      interpreter: { type: 'static', version: 'any' }, bytes: 1, storageKey: `packages/web/${id}`, compression: 'zstd' as const,
      createdAt: new Date().toISOString(), metadata: {} as never, buildId: null,
    });
    expect(state.packages.addAsCurrent(pkg('p1'), 'alice').previous).to.equal(null);
    const second = state.packages.addAsCurrent(pkg('p2'), 'alice');
    expect(second.previous).to.equal('p1');
    expect(state.releases.fail('web', second.release.version, second.previous, 'boom')).to.equal(true);
    expect(state.packages.current('web')?.id).to.equal('p1');
    expect(state.releases.latest('web')).to.include({ version: 2, status: 'failed', failure: 'boom' });
    // Another release came first: the failed one is marked, the current package stays.
    const third = state.packages.addAsCurrent(pkg('p3'), 'alice');
    state.packages.rollBack('web', 'p2', 'bob');
    expect(state.releases.fail('web', third.release.version, third.previous, 'late')).to.equal(false);
    expect(state.packages.current('web')?.id).to.equal('p2');
    expect(state.releases.list('web').map((r) => `${r.version}:${r.status}`)).to.deep.equal(['4:ok', '3:failed', '2:failed', '1:ok']);
    state.close();
  });

  it('a build whose PID now belongs to another process is not alive; the server start sweeps it and its temp folder', async () => {
    const state = State.open(dir);
    try {
      const reused = state.builds.start('app', { fresh: false });
      // Same PID (this live process), another start time: what a crash and PID reuse look like.
      state.db.prepare('UPDATE builds SET owner = ? WHERE id = ?').run(`${processIdentity(process.pid)}0`, reused.id);
      const running = state.builds.start('other', { fresh: false });
      const config = parseConfig({ paths: { workdir: join(dir, 'work'), state: dir, repos: join(dir, 'repos') } }, null);
      for (const id of [reused.id, running.id]) mkdirSync(join(dir, 'work', `app-${id}-abc123`, 'root'), { recursive: true });
      mkdirSync(join(dir, 'work', 'not-a-build'));
      const lines: string[] = [];
      await sweepInterrupted(config, state, (line) => lines.push(line));
      expect(state.builds.get('app', reused.id)).to.include({ status: 'failed', errorKind: 'system' });
      expect(state.builds.get('other', running.id)?.status, 'a live build is left alone').to.equal('running');
      expect(readdirSync(join(dir, 'work')).sort()).to.deep.equal([`app-${running.id}-abc123`, 'not-a-build']);
      expect(lines).to.have.length(2);
      expect(state.builds.start('app', { fresh: false }).status).to.equal('running');
    } finally {
      state.close();
    }
  });

  it('refuses a second live build of an app, and fails builds whose process is gone', async () => {
    const state = State.open(dir);
    try {
      const child = execa('true');
      const deadPid = child.pid as number;
      await child;
      const orphan = state.builds.start('app', { fresh: false, pid: deadPid });
      const live = state.builds.start('app', { fresh: true });
      expect(state.builds.get('app', orphan.id)).to.include({
        status: 'failed',
        errorKind: 'system',
        errorMessage: 'the build was interrupted (its process is gone: the server or the build command stopped or crashed)',
      });
      expect(live).to.include({ status: 'running', fresh: true, pid: process.pid });
      expect(() => state.builds.start('app', { fresh: false })).to.throw(BusyError, `build ${live.id} of app is running`);
      expect(state.builds.start('other', { fresh: false }).status, 'other apps build in parallel').to.equal('running');
      state.builds.finish(live.id, { status: 'succeeded', packageId: 'abc', log: 'the log\n' });
      expect(state.builds.log(live.id)).to.equal('the log\n');
      expect(state.builds.list('app').map((b) => b.id)).to.deep.equal([live.id, orphan.id]);
    } finally {
      state.close();
    }
  });
});
