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
