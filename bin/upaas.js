#!/usr/bin/env node
// Entry point of upaas: the CLI and the server (`serve`). The logic lives in
// src/, TypeScript loaded through tsx.
const { register } = await import('tsx/esm/api');
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
