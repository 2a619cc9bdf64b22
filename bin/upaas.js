#!/usr/bin/env node
// Entry point for every role of upaas (CLI, later the server and the hook shim).
// The logic lives in src/; this file only loads TypeScript through tsx.
import { register } from 'tsx/esm/api';

register();
if (process.argv[2] === 'hook' && process.argv[3] === 'post-receive') {
  // The hook runs on every push: load only what it needs.
  const { postReceive } = await import('../src/hook/post-receive.ts');
  process.exitCode = await postReceive();
} else {
  const { main } = await import('../src/cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
