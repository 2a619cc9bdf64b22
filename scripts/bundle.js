#!/usr/bin/env node
/**
 * Bundles the command line and the server (src/cli/main.ts and everything it
 * imports from src/) into dist/upaas.mjs, which bin/upaas.js runs instead of
 * compiling src/ at every start. npm's `prepare` (npm ci, npm install) and
 * `npm run build` run it. The npm packages that are plain JavaScript go in
 * too (finding and compiling execa's 150 files took longer than the command
 * itself); those with native addons (better-sqlite3, ssh2) load from
 * node_modules as they do from source.
 *
 * dist/manifest.json names every source file the bundle was made from with
 * its size, mtime and SHA-256 as read for the bundle (esbuild is handed
 * exactly those bytes), and this script and tsconfig.json too; bin/upaas.js
 * runs the bundle only while every one of them still matches. The bundle sits
 * one folder below the project root, like src/project.ts, which finds the
 * project's files from there.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { extname, isAbsolute, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODULES = realpathSync(join(ROOT, 'node_modules'));
const DIST = join(ROOT, 'dist');
const ENTRY = 'src/cli/main.ts';
/** What the bundle is made with besides the sources: a change to either makes it stale too. */
const RECIPE = ['scripts/bundle.js', 'tsconfig.json'];
const BUNDLE = 'upaas.mjs';
const MANIFEST = 'manifest.json';

/** esbuild's loader for each kind of source file. */
const LOADERS = /** @type {const} */ ({ '.ts': 'ts', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.json': 'json' });
/** npm packages with native addons: they stay in node_modules. */
const NATIVE = ['better-sqlite3', 'ssh2'];

/** @typedef {{ size: number, mtimeMs: number, sha256: string }} SourceEntry */

/**
 * A file's bytes with the size and mtime they were read at: read again when
 * the file changed while it was read, so the entry describes those bytes.
 * @param {string} file
 * @returns {{ bytes: Buffer, entry: SourceEntry }}
 */
function readSteady(file) {
  for (;;) {
    const before = statSync(file);
    const bytes = readFileSync(file);
    const after = statSync(file);
    if (before.mtimeMs === after.mtimeMs && before.size === after.size && bytes.length === after.size) {
      return { bytes, entry: { size: after.size, mtimeMs: after.mtimeMs, sha256: createHash('sha256').update(bytes).digest('hex') } };
    }
  }
}

/** Writes `data` to `file` in one rename, so a starting bin/upaas.js reads either the old file or the new one. */
function writeAtomic(/** @type {string} */ file, /** @type {string | Uint8Array} */ data) {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, data);
  renameSync(temp, file);
}

/** Builds dist/upaas.mjs and then dist/manifest.json; returns how many source files went in. */
async function bundle() {
  /** @type {Record<string, SourceEntry>} */
  const sources = {};
  for (const path of RECIPE) sources[path] = readSteady(join(ROOT, path)).entry;
  /** @type {import('esbuild').Plugin} */
  const readSources = {
    name: 'upaas-sources',
    setup(builder) {
      builder.onLoad({ filter: /.*/ }, (args) => {
        // npm packages by their path in the project (node_modules may be a link to another checkout's).
        const path = args.path.startsWith(`${MODULES}${sep}`) ? join('node_modules', relative(MODULES, args.path)) : relative(ROOT, args.path);
        if (isAbsolute(path) || path.startsWith(`..${sep}`)) throw new Error(`${args.path}: outside the project`);
        const loader = LOADERS[/** @type {keyof typeof LOADERS} */ (extname(path))];
        if (!loader) throw new Error(`${path}: no loader for this kind of file`);
        const { bytes, entry } = readSteady(args.path);
        sources[path.split(sep).join('/')] = entry;
        return { contents: bytes, loader };
      });
    },
  };
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [ENTRY],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Pure JavaScript packages go in (execa alone is some 150 files to find and compile at every start);
    // the ones with native addons load from node_modules.
    external: NATIVE,
    // The CommonJS ones among them require Node's modules (cross-spawn: child_process): an ES module has no require of its own.
    banner: { js: "import { createRequire as upaasCreateRequire } from 'node:module';\nconst require = upaasCreateRequire(import.meta.url);" },
    outfile: join(DIST, BUNDLE),
    write: false,
    logLevel: 'warning',
    plugins: [readSources],
  });
  const [output] = result.outputFiles;
  if (!output || result.outputFiles.length !== 1) throw new Error(`esbuild made ${result.outputFiles.length} files, expected ${BUNDLE} alone`);
  mkdirSync(DIST, { recursive: true });
  // The bundle first: a start that reads the new manifest then finds the new bundle.
  writeAtomic(join(DIST, BUNDLE), output.contents);
  writeAtomic(join(DIST, MANIFEST), `${JSON.stringify({ sources }, null, 1)}\n`);
  return Object.keys(sources).length - RECIPE.length;
}

const started = performance.now();
const count = await bundle();
process.stdout.write(`upaas: dist/${BUNDLE} from ${count} source files (${Math.round(performance.now() - started)} ms)\n`);
