/** git gc after pushes (core/git-gc.ts) on a real bare repo: in the foreground, one repo at a time. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { GitGc } from '../src/core/git-gc.ts';

describe('git gc after pushes', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-gc-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A bare repo with three packs, one more than gc --auto allows it. */
  async function crowdedRepo(): Promise<string> {
    const bare = join(dir, 'app.git');
    await execa('git', ['init', '--quiet', '--bare', bare]);
    await execa('git', ['--git-dir', bare, 'config', 'gc.autoPackLimit', '2']);
    for (let i = 0; i < 3; i++) {
      const blob = String((await execa('git', ['--git-dir', bare, 'hash-object', '-w', '--stdin'], { input: `blob ${i}` })).stdout);
      await execa('git', ['--git-dir', bare, 'pack-objects', '-q', join(bare, 'objects/pack/pack')], { input: `${blob}\n` });
      await execa('git', ['--git-dir', bare, 'prune-packed']);
    }
    return bare;
  }

  const packs = async (bare: string) => /^packs: ([0-9]+)$/m.exec(String((await execa('git', ['--git-dir', bare, 'count-objects', '-v'])).stdout))?.[1];

  it('has packed the repo when it is idle: gc runs in the foreground, not detached where no limit or stop reaches it', async () => {
    const bare = await crowdedRepo();
    expect(await packs(bare)).to.equal('3');
    const lines: string[] = [];
    const gc = new GitGc((line) => lines.push(line));
    gc.afterPush(bare);
    gc.afterPush(bare);
    await gc.idle();
    expect(Number(await packs(bare)), 'packs after gc').to.be.below(2);
    const detached = await execa('pgrep', ['-f', `gc --auto.*${dir}|${dir}.*gc --auto`], { reject: false });
    expect(String(detached.stdout)).to.equal('');
    expect(lines).to.deep.equal([]);
    await gc.stop();
  });
});
