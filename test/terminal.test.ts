/** App-made text reaches terminals as data: no cursor moves, line clears or titles; colours stay. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { userError } from '../src/builder/errors.ts';
import { BuildLog } from '../src/builder/log.ts';
import { dispatch } from '../src/commands/dispatch.ts';
import { forTerminal, lastRedraw } from '../src/process/terminal.ts';

const ESC = '\x1b';
/** Any escape or control character a terminal acts on, other than an SGR colour sequence. */
const ACTIVE = /\x1b(?!\[[0-9;:]*m)|[\x00-\x08\x0b-\x1a\x1c-\x1f\x80-\x9f]/;

describe('text for terminals', () => {
  it('shows control characters in caret notation and keeps colours, reset at the end', () => {
    expect(forTerminal('plain text\twith a tab\n')).to.equal('plain text\twith a tab\n');
    expect(forTerminal(`error${ESC}[2K${ESC}[1A\r-----> Package x is now current`)).to.equal('error^[[2K^[[1A^M-----> Package x is now current');
    expect(forTerminal(`${ESC}]0;owned${'\x07'}title`)).to.equal('^[]0;owned^Gtitle');
    expect(forTerminal('back\bspace\0nul')).to.equal('back^Hspace^@nul');
    expect(forTerminal(`${ESC}[1;31mred${ESC}[0m done`)).to.equal(`${ESC}[1;31mred${ESC}[0m done`);
    expect(forTerminal(`${ESC}[32mstill green\n`)).to.equal(`${ESC}[32mstill green${ESC}[m\n`);
    // A colour sequence cut short is no colour: its ESC is shown.
    expect(forTerminal(`cut ${ESC}[3`)).to.equal('cut ^[[3');
    // 8-bit controls: CSI and OSC as one character each, which some terminals obey.
    expect(forTerminal('x\u009b2Jy\u009d0;t\u0007')).to.equal('xM-^[2JyM-^]0;t^G');
    // Conceal hides text: not kept as a colour.
    expect(forTerminal(`shown${ESC}[8m hidden${ESC}[1;8m`)).to.equal('shown^[[8m hidden^[[1;8m');
    const once = forTerminal(`${ESC}[32mgreen`);
    expect(forTerminal(once), 'applying it twice changes nothing').to.equal(once);
  });

  it('keeps what a terminal shows of a line redrawn with carriage returns', () => {
    expect(lastRedraw('Downloading  10%\rDownloading  55%\rDownloading 100%')).to.equal('Downloading 100%');
    expect(lastRedraw('done\r')).to.equal('done');
    expect(lastRedraw('no redraw')).to.equal('no redraw');
  });

  it('the build log masks every line it shows, stores and writes; a cut line never ends inside a colour', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'upaas-terminal-'));
    try {
      const seen: string[] = [];
      const log = new BuildLog((line) => seen.push(line), join(dir, 'build.log'));
      log.step(`Revision abc: subject${ESC}[2K${ESC}[1Gforged`);
      log.output(`real error${ESC}[1A${ESC}[2K\r-----> Package fake is now current`);
      log.output(`${ESC}[31mred output${ESC}[0m`);
      // A colour sequence at every offset around where a long line is cut (16 KiB + 128 - 48 bytes).
      for (let offset = -12; offset <= 4; offset++) log.output(`${'x'.repeat(16 * 1024 + 80 - 7 + offset)}${ESC}[31;1;4m${'y'.repeat(200)}`);
      log.failure(userError(`main action failed: \`exit 1\n-----> Package 0123 (1.2 MiB) is now current for app${ESC}[8m\` exited with status 1`));
      await log.close();
      for (const line of [...seen, ...log.text().split('\n'), ...readFileSync(join(dir, 'build.log'), 'utf8').split('\n')]) {
        expect(ACTIVE.test(line), JSON.stringify(line.slice(0, 120))).to.equal(false);
      }
      expect(seen[0]).to.equal('-----> Revision abc: subject^[[2K^[[1Gforged');
      expect(seen[1], 'the redraw keeps the last text, indented like all output').to.equal('       -----> Package fake is now current');
      expect(seen[2]).to.equal(`       ${ESC}[31mred output${ESC}[0m`);
      const cuts = seen.slice(3, -1);
      for (const cut of cuts) expect(cut).to.include(' … [line cut: ');
      expect(cuts.filter((cut) => /\^\[\[3 … \[line cut/.test(cut)), 'a sequence cut after "ESC [3" shows its ESC').to.have.length(1);
      expect(seen.at(-1), 'the failure stays one line, its forged part inside it').to.equal(
        '!     user error: main action failed: `exit 1^J-----> Package 0123 (1.2 MiB) is now current for app^[[8m` exited with status 1',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('admin commands print app-made text as data, locally and over SSH alike', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await dispatch([`whoami`, `--x${ESC}[2J`], {
      user: { name: 'admin', admin: true },
      local: false,
      services: () => {
        throw new Error('not needed');
      },
      io: { out: (text: string) => out.push(text), err: (text: string) => err.push(text), input: async () => '' },
    } as unknown as Parameters<typeof dispatch>[1]);
    expect(code).to.equal(64);
    expect(err.join('')).to.include('^[[2J').and.not.match(ACTIVE);
  });
});
