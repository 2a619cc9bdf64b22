/** Build output stays bounded however much the commands write. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { build } from '../src/build/builder.ts';
import { BuildLog } from '../src/build/log.ts';
import { loadConfig } from '../src/config/config.ts';
import { LineSplitter } from '../src/process/lines.ts';
import { State } from '../src/state/state.ts';
import { createStorage } from '../src/storage/index.ts';
import { World, metadata } from './helpers/world.ts';

describe('build output limits', function () {
  this.timeout(180_000);

  it('splits bytes into lines, across chunks, and cuts a line that is too long', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line), 8);
    splitter.push(Buffer.from('ab'));
    splitter.push(Buffer.from('c\r\nd\n'));
    splitter.push(Buffer.from('0123456789'));
    splitter.push(Buffer.from('abc\nend'));
    splitter.flush();
    expect(lines).to.deep.equal(['abc', 'd', '01234567 … [line cut: 5 more bytes]', 'end']);
  });

  it('keeps the start and the end of the output within the budget; steps and failures always show', () => {
    const seen: string[] = [];
    const log = new BuildLog((line) => seen.push(line), undefined, 64 * 1024);
    log.step('first step');
    for (let i = 0; i < 10_000; i++) log.output(`line ${i} ${'x'.repeat(40)}`);
    log.step('second step');
    log.output('after the second step');
    log.failure({ kind: 'user', line: 'user error: main action failed', message: 'main action failed' } as never);
    const text = log.text();
    expect(text.length).to.be.below(64 * 1024);
    expect(seen.join('\n')).to.equal(text.trimEnd());
    expect(seen[0]).to.equal('-----> first step');
    expect(seen[1]).to.match(/^ {7}line 0 x+$/);
    expect(text).to.match(/\[\.\.\. \d+ lines \([0-9.]+ KiB\) of output left out: builder\.logsize is 64\.0 KiB \.\.\.\]\n {7}line \d+ x+\n/);
    expect(text).to.include('       line 9999 ');
    const second = seen.indexOf('-----> second step');
    expect(seen[second - 1]).to.match(/line 9999 /);
    expect(seen.slice(second + 1)).to.deep.equal(['       after the second step', '!     user error: main action failed']);
  });

  describe('a real build that floods its output', () => {
    let world: World;
    afterEach(() => {
      const leftovers = world.leftovers();
      world.remove();
      expect(leftovers).to.deep.equal([]);
    });

    it('stores at most builder.logsize, keeps the last lines, and the server does not grow with the output', async () => {
      world = new World({ builder: { logsize: 1 } });
      const app = await world.app('flood');
      const main = ['yes "a line of output" | head -n 5000000', 'head -c 50000000 /dev/zero', 'echo', 'echo the-last-line'];
      await app.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main } } }) });
      const config = loadConfig(world.configFile);
      const state = State.open(config.paths.state);
      try {
        let streamed = 0;
        let peak = 0;
        const before = process.memoryUsage().rss;
        const outcome = await build({ config, state, storage: createStorage(config) }, {
          app: 'flood',
          onLine: (line) => {
            streamed += line.length + 1;
            if (streamed % 1000 < 30) peak = Math.max(peak, process.memoryUsage().rss);
          },
        });
        expect(outcome.ok, outcome.ok ? '' : outcome.error.message).to.equal(true);
        expect(streamed, 'what followers saw').to.be.below(1.1 * 1024 * 1024);
        expect(peak - before, 'memory growth').to.be.below(100 * 1024 * 1024);
        const stored = state.builds.log(outcome.buildId as number) ?? '';
        expect(stored.length).to.be.below(1.1 * 1024 * 1024);
        expect(stored).to.match(/of output left out/);
        expect(stored).to.include(' … [line cut: ');
        expect(stored).to.include('       the-last-line\n');
        const file = readFileSync(join(config.paths.state, 'logs', 'flood', `${outcome.buildId}.log`), 'utf8');
        expect(file).to.equal(stored);
      } finally {
        state.close();
      }
    });
  });
});
