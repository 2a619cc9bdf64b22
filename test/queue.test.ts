/** The build queue on its own (core/queue.ts), with a runner the test finishes by hand. */
import { expect } from 'chai';
import type { BuildOutcome, BuildRequest } from '../src/builder/builder.ts';
import { BuildQueue, type Listener } from '../src/core/queue.ts';

/** A runner whose builds end when the test says so. */
function runner() {
  const started: { request: BuildRequest; finish: () => void }[] = [];
  const run = (request: BuildRequest) =>
    new Promise<BuildOutcome>((resolve) => {
      started.push({ request, finish: () => resolve({ ok: false, buildId: null, error: new Error('test') as never, timings: { totalMs: 0, commandMs: 0 } }) });
    });
  return { run, started };
}

function listener() {
  const lines: string[] = [];
  let outcome: BuildOutcome | null | undefined;
  const l: Listener = { line: (line) => lines.push(line), done: (o) => (outcome = o) };
  return { l, lines, outcome: () => outcome };
}

describe('build queue', () => {
  it('forgets the waiting request of a deleted repo: its requesters are told, and it never runs', async () => {
    const { run, started } = runner();
    const queue = new BuildQueue(run, 1);
    const first = listener();
    const waiting = listener();
    queue.request({ app: 'shop', fresh: false, requestedBy: 'ann' }, first.l);
    queue.request({ app: 'shop', fresh: true, requestedBy: 'bob' }, waiting.l);
    expect(started).to.have.length(1);
    queue.forget('shop', 'repository shop was deleted');
    expect(waiting.lines.at(-1)).to.equal('!     system error: the build did not start: repository shop was deleted');
    expect(waiting.outcome()).to.equal(null);
    started[0]?.finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(started, 'nothing more ran').to.have.length(1);
    expect(first.outcome()).to.not.equal(undefined);
  });

  it('refuses new and waiting requests once it stops', async () => {
    const { run, started } = runner();
    const queue = new BuildQueue(run, 1);
    const waiting = listener();
    queue.request({ app: 'a', fresh: false, requestedBy: 'ann' }, listener().l);
    queue.request({ app: 'a', fresh: false, requestedBy: 'ann' }, waiting.l);
    const stopped = queue.stop(60);
    const late = listener();
    queue.request({ app: 'b', fresh: false, requestedBy: 'ann' }, late.l);
    for (const refused of [waiting, late]) {
      expect(refused.lines.at(-1)).to.equal('!     system error: the server is stopping; push again in a moment');
      expect(refused.outcome()).to.equal(null);
    }
    started[0]?.finish();
    await stopped;
  });
});

describe('build queue: requests alone (pre-receive pushes)', () => {
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('builds each alone request by itself, in arrival order; later coalescing requests join only each other', async () => {
    const { run, started } = runner();
    const queue = new BuildQueue(run, 2);
    queue.request({ app: 'a', revision: 'r1', fresh: false, requestedBy: 'ann' }, listener().l);
    const second = listener();
    queue.request({ app: 'a', revision: 'r2', fresh: false, requestedBy: 'bob', alone: true }, second.l);
    queue.request({ app: 'a', revision: 'r3', fresh: true, requestedBy: 'cid', alone: true }, listener().l);
    queue.request({ app: 'a', revision: 'r4', fresh: false, requestedBy: 'dan' }, listener().l);
    queue.request({ app: 'a', revision: 'r5', fresh: false, requestedBy: 'eve' }, listener().l);
    expect(second.lines).to.deep.equal(['-----> waiting: build (starting) of a is running']);
    const revisions: (string | undefined)[] = [];
    for (let i = 0; i < 4; i++) {
      expect(started, 'one build of the app at a time').to.have.length(i + 1);
      revisions.push(started[i]?.request.revision);
      started[i]?.finish();
      await settle();
    }
    expect(revisions).to.deep.equal(['r1', 'r2', 'r3', 'r5']);
    expect(started[2]?.request).to.include({ fresh: true, requestedBy: 'cid' });
    expect(started[2]?.request, 'the queue keeps its own options').to.not.have.any.keys('alone');
  });

  it('keeps the app turn until holdUntil settles, and asks ready before the build starts', async () => {
    const { run, started } = runner();
    const queue = new BuildQueue(run, 2);
    let release = () => undefined as void;
    const held = listener();
    queue.request({ app: 'a', fresh: false, requestedBy: 'ann', alone: true }, { ...held.l, holdUntil: new Promise<void>((resolve) => (release = resolve)) });
    const refused = listener();
    let asked = 0;
    queue.request(
      { app: 'a', fresh: false, requestedBy: 'bob', alone: true },
      {
        ...refused.l,
        ready: async () => {
          asked += 1;
          refused.l.line('!     user error: main moved');
          return false;
        },
      },
    );
    const next = listener();
    queue.request({ app: 'a', fresh: false, requestedBy: 'cid' }, next.l);
    started[0]?.finish();
    await settle();
    expect(held.outcome(), 'done once the build is').to.not.equal(undefined);
    expect(asked, 'the next one waits for the hold').to.equal(0);
    release();
    await settle();
    await settle();
    expect(asked).to.equal(1);
    expect(refused.outcome()).to.equal(null);
    expect(refused.lines.at(-1)).to.equal('!     user error: main moved');
    expect(started.map((s) => s.request.requestedBy), 'a build nobody waits for does not run').to.deep.equal(['ann', 'cid']);
  });

  it('a held turn keeps its app waiting but uses no worker: held pushes cannot stop other apps from building', async () => {
    const { run, started } = runner();
    const queue = new BuildQueue(run, 2);
    const never = new Promise<void>(() => undefined);
    for (const app of ['a', 'b']) queue.request({ app, fresh: false, requestedBy: 'ann', alone: true }, { ...listener().l, holdUntil: never });
    started[0]?.finish();
    started[1]?.finish();
    await settle();
    const other = listener();
    queue.request({ app: 'c', fresh: false, requestedBy: 'cid' }, other.l);
    const same = listener();
    queue.request({ app: 'a', fresh: false, requestedBy: 'dan' }, same.l);
    await settle();
    expect(started.map((s) => s.request.app), 'c builds at once; a waits for its held turn').to.deep.equal(['a', 'b', 'c']);
    expect(other.lines).to.deep.equal([]);
    expect(same.lines).to.deep.equal(['-----> waiting: build (starting) of a is running']);
  });

  it('drops a waiting alone request whose requester went away, and cancels a running one', async () => {
    const { run, started } = runner();
    const queue = new BuildQueue(run, 1);
    const first = new AbortController();
    const second = new AbortController();
    queue.request({ app: 'a', fresh: false, requestedBy: 'ann', alone: true, signal: first.signal }, listener().l);
    const waiting = listener();
    queue.request({ app: 'a', fresh: false, requestedBy: 'bob', alone: true, signal: second.signal }, waiting.l);
    second.abort();
    expect(waiting.lines.at(-1)).to.equal('!     system error: the build did not start: its requester went away');
    expect(waiting.outcome()).to.equal(null);
    expect(started[0]?.request.signal?.aborted).to.equal(false);
    first.abort();
    expect(started[0]?.request.signal?.aborted, 'the running build is cancelled').to.equal(true);
    started[0]?.finish();
    await settle();
    expect(started).to.have.length(1);
  });
});
