/**
 * How bin/upaas.js starts: from dist/upaas.mjs (scripts/bundle.js) while the
 * bundle was made from the sources as they are, from src/ through tsx
 * otherwise. Runs on a copy of the project (its own src/ and dist/,
 * node_modules shared), so the checkout's files are never touched; which code
 * ran is seen by a module loader hook (fixtures/loaded-modules.mjs), and by
 * what an edited source prints.
 */
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { execa } from 'execa';
import { PROJECT, World } from './helpers/world.ts';

const PROBE = join(PROJECT, 'test/fixtures/loaded-modules.mjs');

describe('cli start (bin/upaas.js)', function () {
  this.timeout(60_000);
  let copy: string;
  let world: World;
  let runs = 0;

  before(async () => {
    copy = mkdtempSync(join(tmpdir(), 'upaas-cli-start-'));
    for (const part of ['bin', 'scripts', 'src', 'hooks', 'examples', 'package.json', 'tsconfig.json']) {
      cpSync(join(PROJECT, part), join(copy, part), { recursive: true });
    }
    symlinkSync(join(PROJECT, 'node_modules'), join(copy, 'node_modules'));
    await bundle();
  });
  after(() => rmSync(copy, { recursive: true, force: true }));
  beforeEach(() => {
    world = new World();
  });
  afterEach(() => world.remove());

  async function bundle(): Promise<void> {
    const result = await execa('node', [join(copy, 'scripts/bundle.js')], { reject: false });
    expect(result.exitCode, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/^upaas: dist\/upaas\.mjs from \d+ source files/);
  }

  /** Runs the copy's `upaas -c CONFIG ARGS`: its output, and every module it loaded (URLs relative to the copy). */
  async function upaas(args: string[], env: Record<string, string> = {}): Promise<{ exitCode: number; stdout: string; stderr: string; loaded: string[] }> {
    const list = join(copy, `loaded-${++runs}`);
    writeFileSync(list, '');
    const result = await execa('node', ['--import', PROBE, join(copy, 'bin/upaas.js'), '-c', world.configFile, ...args], {
      reject: false,
      cwd: world.dir,
      env: { UPAAS_FROM_SOURCE: undefined, ...env, LOADED_MODULES_FILE: list },
    });
    // The copy's files by their path in it; npm packages (node_modules is a link to the checkout's) as node_modules/...
    const bases = [pathToFileURL(`${copy}/`).href, pathToFileURL(PROJECT).href];
    const loaded = readFileSync(list, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((url) => {
        const base = bases.find((b) => url.startsWith(b));
        return base ? url.slice(base.length) : url;
      });
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr), loaded };
  }

  const fromBundle = (loaded: string[]) => loaded.includes('dist/upaas.mjs') && !loaded.some((url) => url.startsWith('node_modules/tsx/') || /\.ts(\?|$)/.test(url));
  const fromSource = (loaded: string[]) => !loaded.includes('dist/upaas.mjs') && loaded.includes('node_modules/tsx/dist/esm/api/index.mjs') && loaded.includes('src/cli/main.ts');

  /** Replaces `from` with `to` in a source file of the copy. */
  function edit(path: string, from: string, to: string): void {
    const file = join(copy, path);
    const text = readFileSync(file, 'utf8');
    expect(text).to.include(from);
    writeFileSync(file, text.replace(from, to));
  }

  it('npm ci and npm run build make the bundle', () => {
    const { scripts } = JSON.parse(readFileSync(join(PROJECT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(scripts.prepare).to.equal('node scripts/bundle.js');
    expect(scripts.build).to.equal('node scripts/bundle.js');
  });

  it('runs commands from the bundle, without tsx or any TypeScript', async () => {
    let r = await upaas(['whoami']);
    expect(r.stdout, r.stderr).to.equal('local-admin (admin)');
    expect(fromBundle(r.loaded), r.loaded.join('\n')).to.equal(true);
    // The plain JavaScript packages (execa's many modules) are in the bundle; of node_modules only better-sqlite3 (native) loads.
    expect(r.loaded.filter((url) => url.startsWith('node_modules/') && !url.startsWith('node_modules/better-sqlite3/'))).to.deep.equal([]);
    // Config, state (better-sqlite3) and the project's hook shims (src/project.ts in the bundle).
    r = await upaas(['repos', 'create', 'web']);
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(fromBundle(r.loaded), r.loaded.join('\n')).to.equal(true);
    for (const hook of ['post-receive', 'update', 'pre-receive']) {
      expect(readFileSync(join(world.dir, 'repos/web.git/hooks', hook), 'utf8'), hook).to.equal(readFileSync(join(PROJECT, 'hooks', hook), 'utf8'));
    }
  });

  describe('an edited checkout', () => {
    const path = 'src/commands/whoami.ts';
    let original: string;
    before(() => {
      original = readFileSync(join(copy, path), 'utf8');
    });
    afterEach(async () => {
      writeFileSync(join(copy, path), original);
      await bundle();
    });

    it('runs from source until it is bundled again', async () => {
      // Same size, other bytes: only the hash tells them apart.
      edit(path, "' (admin)'", "' (ADMIN)'");
      let r = await upaas(['whoami']);
      expect(r.stdout, r.stderr).to.equal('local-admin (ADMIN)');
      expect(fromSource(r.loaded), r.loaded.join('\n')).to.equal(true);
      edit(path, "' (ADMIN)'", "' (admin, edited)'");
      r = await upaas(['whoami']);
      expect(r.stdout, r.stderr).to.equal('local-admin (admin, edited)');
      expect(fromSource(r.loaded)).to.equal(true);
      await bundle();
      r = await upaas(['whoami']);
      expect(r.stdout, r.stderr).to.equal('local-admin (admin, edited)');
      expect(fromBundle(r.loaded), r.loaded.join('\n')).to.equal(true);
      // Back as it was before that bundle (a checkout of the commit before): from source again.
      writeFileSync(join(copy, path), original);
      r = await upaas(['whoami']);
      expect(r.stdout).to.equal('local-admin (admin)');
      expect(fromSource(r.loaded)).to.equal(true);
    });

    it('runs the bundle when a file is rewritten with the bytes it was made from', async () => {
      writeFileSync(join(copy, path), original);
      const r = await upaas(['whoami']);
      expect(r.stdout).to.equal('local-admin (admin)');
      expect(fromBundle(r.loaded), r.loaded.join('\n')).to.equal(true);
    });
  });

  it('runs from source with UPAAS_FROM_SOURCE=1, without a bundle and when a source file is gone', async () => {
    let r = await upaas(['whoami'], { UPAAS_FROM_SOURCE: '1' });
    expect(r.stdout, r.stderr).to.equal('local-admin (admin)');
    expect(fromSource(r.loaded)).to.equal(true);
    renameSync(join(copy, 'dist'), join(copy, 'dist.away'));
    try {
      r = await upaas(['whoami']);
      expect(r.stdout, r.stderr).to.equal('local-admin (admin)');
      expect(fromSource(r.loaded)).to.equal(true);
    } finally {
      renameSync(join(copy, 'dist.away'), join(copy, 'dist'));
    }
    const manifest = JSON.parse(readFileSync(join(copy, 'dist/manifest.json'), 'utf8')) as { sources: Record<string, unknown> };
    expect(manifest.sources).to.have.property('src/commands/whoami.ts');
    expect(manifest.sources).to.have.property('src/project.ts');
    expect(manifest.sources, 'how it is made').to.include.keys('scripts/bundle.js', 'tsconfig.json');
    renameSync(join(copy, 'src/project.ts'), join(copy, 'src/project.ts.away'));
    try {
      r = await upaas(['whoami']);
      expect(r.exitCode, 'the source run cannot find it either').to.not.equal(0);
      expect(r.loaded).to.not.include('dist/upaas.mjs');
    } finally {
      renameSync(join(copy, 'src/project.ts.away'), join(copy, 'src/project.ts'));
    }
  });
});
