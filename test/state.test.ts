/** State: migrations, one live build per app, builds left by dead processes. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { BusyError } from '../src/state/builds.ts';
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
    expect(state.db.pragma('user_version', { simple: true })).to.equal(2);
    state.close();
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
        errorMessage: 'the build was interrupted (its process is gone)',
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
