/** Build output stays bounded however much the commands write. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'chai';
import { build } from '../src/builder/builder.ts';
import { userError } from '../src/builder/errors.ts';
import { BuildLog, DEFAULT_LOG_BYTES, MAX_LOG_BYTES } from '../src/builder/log.ts';
import { loadConfig } from '../src/config/config.ts';
import { LineSplitter, MAX_LINE_BYTES } from '../src/process/lines.ts';
import { run } from '../src/process/run.ts';
import { State } from '../src/state/state.ts';
import { createStorage } from '../src/storage/index.ts';
import { World, metadata } from './helpers/world.ts';

/** A full garbage collection (the flag turns on gc() for contexts made after it). */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const KiB = 1024;
const MiB = 1024 * KiB;
const NOTICE = /^ {7}\[\.\.\. output held back: the log reached half of builder\.logsize \([0-9.]+ [KM]iB\); from here only its last [0-9.]+ [KM]iB is kept, and shown when the build ends \.\.\.\]$/;
const MARKER = /^ {7}\[\.\.\. (\d+) lines \([0-9.]+ [KMG]?i?B\) of output left out: builder\.logsize is [0-9.]+ [KM]iB \.\.\.\]$/;

/** A log over a temp file; `seen` is what a live follower got. */
function tempLog(maxBytes?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'upaas-log-'));
  const file = join(dir, 'build.log');
  const seen: string[] = [];
  const log = new BuildLog((line) => seen.push(line), file, maxBytes);
  return { log, seen, file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const bytesOf = (text: string) => Buffer.byteLength(text);

describe('build output limits', function () {
  this.timeout(300_000);

  describe('LineSplitter', () => {
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

    it('cuts on a character boundary, never inside a multibyte character', () => {
      const lines: string[] = [];
      const splitter = new LineSplitter((line) => lines.push(line), 8);
      // 'aaaaaa' + 'é' (2 bytes) + '€' (3 bytes): the limit of 8 falls inside the euro sign.
      splitter.push(Buffer.from('aaaaaaé€xyz\n'));
      splitter.push(Buffer.from('aaaaaaaé€\n'));
      expect(lines).to.deep.equal(['aaaaaaé … [line cut: 6 more bytes]', 'aaaaaaa … [line cut: 5 more bytes]']);
    });

    it('holds at most one cut line of a newline-less flood, however long it is', () => {
      const lines: string[] = [];
      const splitter = new LineSplitter((line) => lines.push(line));
      const chunk = Buffer.alloc(64 * KiB, 'z');
      for (let i = 0; i < 1024; i++) splitter.push(chunk); // 64 MiB, no newline
      splitter.push(Buffer.from('\nafter\n'));
      expect(lines).to.have.length(2);
      expect(lines[0]).to.equal(`${'z'.repeat(MAX_LINE_BYTES)} … [line cut: ${64 * MiB - MAX_LINE_BYTES} more bytes]`);
      expect(lines[1]).to.equal('after');
    });
  });

  describe('BuildLog', () => {
    it('keeps a log within its budget as it is: every line live, in the file and stored, no marker', async () => {
      const { log, seen, file, remove } = tempLog(64 * KiB);
      try {
        log.step('first step');
        log.output('one\ntwo');
        log.failure(userError('main action failed', { detail: 'why' }));
        await log.close();
        const expected = ['-----> first step', '       one', '       two', '       why', '!     user error: main action failed'];
        expect(seen).to.deep.equal(expected);
        expect(log.text()).to.equal(`${expected.join('\n')}\n`);
        expect(readFileSync(file, 'utf8')).to.equal(log.text());
      } finally {
        remove();
      }
    });

    it('keeps the head and the tail of a flood with one marker; followers get the head, a notice, then at the end the marker and the tail', async () => {
      const budget = 64 * KiB;
      const { log, seen, file, remove } = tempLog(budget);
      try {
        log.step('first step');
        const total = 10_000;
        for (let i = 0; i < total; i++) log.output(`line ${i} ${'x'.repeat(40)}`);
        log.step('second step');
        log.output('after the second step');
        log.failure(userError('main action failed'));
        // Before the end, followers have the head and the notice only, and the file is a prefix of it.
        const notice = seen.findIndex((line) => NOTICE.test(line));
        expect(notice).to.be.greaterThan(100);
        expect(seen).to.have.length(notice + 1);
        expect(bytesOf(`${seen.join('\n')}\n`)).to.be.at.most(budget / 2);
        const written = () => (existsSync(file) ? readFileSync(file, 'utf8') : '');
        for (let i = 0; i < 100 && written() === ''; i++) await new Promise((resolve) => setTimeout(resolve, 20));
        expect(written()).not.to.equal('');
        expect(`${seen.join('\n')}\n`.startsWith(written())).to.equal(true);

        const stored = log.text();
        await log.close();
        expect(bytesOf(stored)).to.be.at.most(budget);
        expect(readFileSync(file, 'utf8')).to.equal(stored);
        expect(`${seen.join('\n')}\n`).to.equal(stored);

        const lines = stored.trimEnd().split('\n');
        expect(lines[0]).to.equal('-----> first step');
        expect(lines[1]).to.equal(`       line 0 ${'x'.repeat(40)}`);
        expect(lines.filter((line) => line.includes('[... '))).to.have.length(2);
        const marker = lines.findIndex((line) => MARKER.test(line));
        expect(marker).to.equal(notice + 1);
        // The count adds up: every output line is kept or counted.
        const kept = lines.filter((line) => line.startsWith('       line ')).length;
        expect(kept + Number(MARKER.exec(lines[marker] as string)?.[1])).to.equal(total);
        expect(lines[marker + 1]).to.match(/^ {7}line \d+ x+$/);
        expect(lines.slice(-4)).to.deep.equal([
          `       line ${total - 1} ${'x'.repeat(40)}`,
          '-----> second step',
          '       after the second step',
          '!     user error: main action failed',
        ]);
        // The tail is nearly the other half of the budget.
        expect(bytesOf(lines.slice(marker + 1).join('\n'))).to.be.above(budget / 2 - 2 * KiB);
      } finally {
        remove();
      }
    });

    it('shows held-back lines at the end with no marker when the tail had room for all of them', async () => {
      const { log, seen, remove } = tempLog(16 * KiB);
      try {
        const all = Array.from({ length: 200 }, (_, i) => `       line ${i} ${'x'.repeat(50)}`);
        for (const line of all) log.output(line.slice(7));
        await log.close();
        const lines = log.text().trimEnd().split('\n');
        const notice = lines.findIndex((line) => NOTICE.test(line));
        expect(notice).to.be.greaterThan(0);
        expect([...lines.slice(0, notice), ...lines.slice(notice + 1)]).to.deep.equal(all);
        expect(lines.some((line) => MARKER.test(line))).to.equal(false);
        expect(seen).to.deep.equal(lines);
      } finally {
        remove();
      }
    });

    it('keeps the end of the last step when several steps flood (one marker, the failure and its detail last)', () => {
      const { log, remove } = tempLog(MiB);
      try {
        for (let step = 0; step < 5; step++) {
          log.step(`step ${step}`);
          for (let i = 0; i < 50_000; i++) log.output(`step ${step} line ${i}`);
        }
        log.output('the-last-line');
        log.failure(userError('main action failed', { detail: 'the detail' }));
        const stored = log.text();
        expect(bytesOf(stored)).to.be.at.most(MiB);
        expect(stored.match(/of output left out/g)).to.have.length(1);
        expect(stored.endsWith('       step 4 line 49999\n       the-last-line\n       the detail\n!     user error: main action failed\n')).to.equal(true);
      } finally {
        remove();
      }
    });

    it('counts bytes, not characters: multibyte and replaced binary output stay within the budget', () => {
      const { log, remove } = tempLog(MiB);
      try {
        for (let i = 0; i < 20_000; i++) log.output('日本語のテキスト'.repeat(10));
        for (let i = 0; i < 20_000; i++) log.output('\uFFFD'.repeat(200)); // what invalid UTF-8 becomes
        log.output('the-last-line');
        const stored = log.text();
        expect(bytesOf(stored)).to.be.at.most(MiB);
        expect(stored.endsWith('       the-last-line\n')).to.equal(true);
        // Whole lines only, no character torn where the ring dropped lines.
        for (const line of stored.split('\n').filter((l) => l.includes('日') || l.includes('\uFFFD'))) {
          expect([`       ${'日本語のテキスト'.repeat(10)}`, `       ${'\uFFFD'.repeat(200)}`]).to.include(line);
        }
      } finally {
        remove();
      }
    });

    it('cuts any line longer than 16 KiB on a character boundary, with a note of what was cut', () => {
      const { log, remove } = tempLog();
      try {
        log.output(`$ ${'é'.repeat(20_000)}`);
        log.output(`a${'x'.repeat(MAX_LINE_BYTES)} … [line cut: 5 more bytes]`); // as the splitter cuts: left alone
        const [first, second] = log.text().trimEnd().split('\n') as [string, string];
        expect(bytesOf(first)).to.be.at.most(MAX_LINE_BYTES + 128);
        expect(first).to.match(/^ {7}\$ é+ … \[line cut: \d+ more bytes\]$/);
        const cut = Number(/(\d+) more bytes/.exec(first)?.[1]);
        expect(bytesOf(first.replace(/ … \[line cut: \d+ more bytes\]$/, '')) + cut).to.equal(bytesOf(`       $ ${'é'.repeat(20_000)}`));
        expect(second).to.equal(`       a${'x'.repeat(MAX_LINE_BYTES)} … [line cut: 5 more bytes]`);
      } finally {
        remove();
      }
    });

    it('keeps the tail on line boundaries through many wraps of its ring, lines of every size', () => {
      const budget = 256 * KiB;
      const { log, remove } = tempLog(budget);
      let seed = 42;
      const random = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      try {
        const all: string[] = [];
        for (let i = 0; i < 40_000; i++) {
          const size = random() < 0.01 ? Math.floor(random() * 16_000) : Math.floor(random() * 200);
          const line = `${i}:${(random() < 0.2 ? 'ü' : 'a').repeat(size)}`;
          all.push(`       ${line}`);
          log.output(line);
        }
        const lines = log.text().trimEnd().split('\n');
        const marker = lines.findIndex((line) => MARKER.test(line));
        const tail = lines.slice(marker + 1);
        expect(tail).to.deep.equal(all.slice(all.length - tail.length));
        expect(Number(MARKER.exec(lines[marker] as string)?.[1])).to.equal(all.length - tail.length - (marker - 1));
        expect(bytesOf(lines.join('\n'))).to.be.at.most(budget);
      } finally {
        remove();
      }
    });

    it('uses memory bounded by its budget, not by the output', () => {
      const { log, remove } = tempLog(DEFAULT_LOG_BYTES);
      try {
        // What is kept, not garbage the collector has not got to yet (which made this flaky: 34.0 MB against 33.6).
        collectGarbage();
        const before = process.memoryUsage();
        for (let i = 0; i < 10_000_000; i++) log.output('y');
        collectGarbage();
        const after = process.memoryUsage();
        const grown = after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers;
        expect(grown, 'memory growth').to.be.below(4 * DEFAULT_LOG_BYTES);
        expect(bytesOf(log.text())).to.be.at.most(DEFAULT_LOG_BYTES);
        expect(MAX_LOG_BYTES).to.be.at.most(256 * MiB);
      } finally {
        remove();
      }
    });
  });

  describe('run()', () => {
    it('keeps the last 30 lines for error details, in order', async () => {
      const result = await run('seq', ['1', '100']);
      expect(result.tail).to.deep.equal(Array.from({ length: 30 }, (_, i) => String(71 + i)));
      expect((await run('seq', ['1', '3'])).tail).to.deep.equal(['1', '2', '3']);
    });

    it('streams a newline-less flood of 100 MB as one cut line, in bounded memory', async () => {
      const lines: string[] = [];
      const before = process.memoryUsage().rss;
      const result = await run('sh', ['-c', 'head -c 100000000 /dev/zero | tr "\\0" z; echo; echo end'], { onLine: (line) => lines.push(line) });
      expect(result.ok).to.equal(true);
      expect(process.memoryUsage().rss - before).to.be.below(100 * MiB);
      expect(lines).to.have.length(2);
      expect(lines[0]).to.equal(`${'z'.repeat(MAX_LINE_BYTES)} … [line cut: ${100_000_000 - MAX_LINE_BYTES} more bytes]`);
      expect(lines[1]).to.equal('end');
    });
  });

  describe('a real build that floods its output', () => {
    let world: World;
    afterEach(() => {
      const leftovers = world.leftovers();
      world.remove();
      expect(leftovers).to.deep.equal([]);
    });

    /** Builds `main` after a quiet build of the same app (so the image and the code are warm), measuring the server's RSS. */
    async function flood(app: string, main: string[], logsize?: number) {
      world = new World(logsize === undefined ? {} : { builder: { logsize } });
      const repo = await world.app(app);
      const commit = (actions: string[]) => repo.commit({ '.upaas.yml': metadata({ interpreter: { type: 'static' }, actions: { setup: { main: actions } } }) });
      const config = loadConfig(world.configFile);
      const state = State.open(config.paths.state);
      const services = { config, state, storage: createStorage(config) };
      const seen: string[] = [];
      let sampler: NodeJS.Timeout | undefined;
      try {
        await commit(['echo warming up']);
        const warm = await build(services, { app });
        expect(warm.ok, warm.ok ? '' : warm.error.message).to.equal(true);
        await commit(main);
        const before = process.memoryUsage().rss;
        let peak = before;
        sampler = setInterval(() => {
          peak = Math.max(peak, process.memoryUsage().rss);
        }, 20);
        const started = performance.now();
        const outcome = await build(services, { app, onLine: (line) => seen.push(line) });
        clearInterval(sampler);
        peak = Math.max(peak, process.memoryUsage().rss);
        const stored = state.builds.log(outcome.buildId as number) ?? '';
        const file = readFileSync(join(config.paths.state, 'logs', app, `${outcome.buildId}.log`), 'utf8');
        const seconds = (performance.now() - started) / 1000;
        return { outcome, stored, file, seen, growth: peak - before, seconds, budget: config.builder.logsize * MiB };
      } finally {
        clearInterval(sampler);
        state.close();
      }
    }

    it('320 MB of output (yes, long and short lines, and a 100 MB newline-less flood): the default 8 MiB is kept, the last line too, the server does not grow', async () => {
      // `yes | head -c 200000000` would be 100M lines: ~25-60 s of line splitting; long lines carry the volume, short ones the count.
      const main = [
        'yes "a line of output from a chatty build, printed again and again and again" | head -c 200000000',
        'yes | head -c 20000000',
        'head -c 100000000 /dev/zero',
        'echo',
        'echo the-last-line',
      ];
      const { outcome, stored, file, seen, growth, seconds, budget } = await flood('flood', main);
      expect(outcome.ok, outcome.ok ? '' : outcome.error.message).to.equal(true);
      expect(budget).to.equal(8 * MiB);
      expect(bytesOf(stored)).to.be.at.most(budget);
      expect(bytesOf(stored)).to.be.above(budget - 64 * KiB);
      expect(growth, 'RSS growth').to.be.below(100 * MiB);
      expect(file).to.equal(stored);
      expect(`${seen.join('\n')}\n`).to.equal(stored);
      const lines = stored.trimEnd().split('\n');
      expect(lines.filter((line) => NOTICE.test(line))).to.have.length(1);
      const markers = lines.filter((line) => MARKER.test(line));
      expect(markers).to.have.length(1);
      expect(Number(MARKER.exec(markers[0] as string)?.[1])).to.be.above(12_000_000);
      // The zero bytes as a terminal gets them: ^@ (terminal.ts).
      expect(stored).to.match(/\n {7}(\^@)+\^? … \[line cut: \d+ more bytes\]\n {7}\$ echo\n {7}\n {7}\$ echo the-last-line\n {7}the-last-line\n/);
      expect(lines.at(-1)).to.match(/^-----> Package [0-9a-f]+ \([0-9.]+ [KM]iB\) is now current for flood$/);
      console.log(`      stored ${bytesOf(stored)} bytes of ~320 MB; RSS growth ${(growth / MiB).toFixed(1)} MiB; build ${seconds.toFixed(1)} s`);
    });

    it('a failing flood with builder.logsize 1: the pusher sees the head, then the end with the failure line last', async () => {
      const main = ['head -c 10000000 /dev/zero | tr "\\0" "\\n"', 'echo the-last-line', 'exit 3'];
      const { outcome, stored, file, seen, growth, seconds, budget } = await flood('failing', main, 1);
      expect(outcome.ok).to.equal(false);
      expect(budget).to.equal(MiB);
      expect(bytesOf(stored)).to.be.at.most(budget);
      expect(growth, 'RSS growth').to.be.below(100 * MiB);
      expect(file).to.equal(stored);
      expect(`${seen.join('\n')}\n`).to.equal(stored);
      expect(stored.match(/of output left out/g)).to.have.length(1);
      expect(stored).to.match(/ {7}the-last-line\n(.*\n)*!     user error: .*`exit 3` exited with status 3\n$/);
      const cli = await world.cli('log', 'failing', '--no-follow');
      expect(`${cli.stdout}\n`, 'upaas log').to.equal(stored); // the helper strips the final newline
      console.log(`      stored ${bytesOf(stored)} bytes of ~10M lines; RSS growth ${(growth / MiB).toFixed(1)} MiB; build ${seconds.toFixed(1)} s`);
    });
  });
});
