#!/usr/bin/env node
// Entry point for every role of upaas: the CLI, the server (`serve`) and the
// post-receive hook. The logic lives in src/; TypeScript is loaded through tsx,
// except for the hook, which is plain JavaScript so that pushes start fast.
if (process.argv[2] === 'hook' && process.argv[3] === 'post-receive') {
  const { postReceive } = await import('../src/hook/post-receive.js');
  process.exitCode = await postReceive();
} else {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('../src/cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
