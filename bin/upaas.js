#!/usr/bin/env node
// Entry point for every role of upaas (CLI, later the server and the hook shim).
// The logic lives in src/; this file only loads TypeScript through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
