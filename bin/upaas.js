#!/usr/bin/env node
// Entry point of upaas: the CLI and the server (`serve`). The logic lives in
// src/. It runs from dist/upaas.mjs, the bundle `npm ci` makes
// (scripts/bundle.js, `npm run build`), while every source file the bundle
// was made from is as it was then; otherwise (no bundle, a checkout edited or
// moved to another commit since, UPAAS_FROM_SOURCE=1) from src/ through tsx.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

const ROOT = new URL('../', import.meta.url);
const BUNDLE = new URL('dist/upaas.mjs', ROOT);

/**
 * Is the bundle made from the source files as they are now? Each file named
 * in dist/manifest.json with its size and mtime then: a matching stat is
 * enough; a file whose mtime moved but whose size did not (a checkout back
 * and forth, `touch`) is read and its SHA-256 compared.
 */
function bundleIsCurrent() {
  /** @type {{ sources: Record<string, { size: number, mtimeMs: number, sha256: string }> }} */
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(new URL('dist/manifest.json', ROOT), 'utf8'));
    statSync(BUNDLE);
  } catch {
    return false;
  }
  for (const [path, made] of Object.entries(manifest.sources)) {
    const file = new URL(path, ROOT);
    const now = statSync(file, { throwIfNoEntry: false });
    if (!now || now.size !== made.size) return false;
    if (now.mtimeMs !== made.mtimeMs && createHash('sha256').update(readFileSync(file)).digest('hex') !== made.sha256) return false;
  }
  return true;
}

async function fromSource() {
  const { register } = await import('tsx/esm/api');
  register();
  return import('../src/cli/main.ts');
}

/** @type {{ main: (argv: string[]) => Promise<number> }} */
const cli = process.env.UPAAS_FROM_SOURCE !== '1' && bundleIsCurrent() ? await import(BUNDLE.href) : await fromSource();
process.exitCode = await cli.main(process.argv.slice(2));
