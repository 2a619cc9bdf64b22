/**
 * Builder benchmark (`npm run bench`): an incremental build of the example
 * app with no change, on the real Debian image. It reports, measured in this
 * same run, the builder's own time (total minus the admin/app commands)
 * against a shell pipeline doing the same file work on the same package
 * (`zstd -d | tar x`, `tar c | zstd -T0`, `sha256sum`, copy into storage,
 * `rm -rf`), as a ratio (target <= 1.1); the gzip path against zstd; and
 * what the jail costs: the same build with builder.network host and no
 * builder.limits (no cgroup, volume or network namespace) as the baseline.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { type BuildOutcome, build } from '../src/builder/builder.ts';
import { type Config, parseConfig } from '../src/config/config.ts';
import { loadYamlFile } from '../src/config/yaml.ts';
import { createRepo } from '../src/git/repos.ts';
import { State } from '../src/state/state.ts';
import { LocalStorage } from '../src/storage/local.ts';

const PROJECT = new URL('..', import.meta.url).pathname;
const IMAGE_STORAGE = join(PROJECT, 'test/.cache/real-storage');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

interface Setup {
  config: Config;
  state: State;
  storage: LocalStorage;
}

type Builder = { compression: 'zstd' | 'gzip'; network?: 'isolated' | 'host'; limits?: { processes: number; memory: number; disk: number } };

async function setUp(dir: string, builder: Builder): Promise<Setup> {
  const shipped = loadYamlFile(join(PROJECT, 'upaas.yml')) as Record<string, unknown>;
  const config = parseConfig(
    {
      ...shipped,
      paths: { repos: join(dir, 'repos'), state: join(dir, 'state'), workdir: join(dir, 'work') },
      storage: { settings: { dir: IMAGE_STORAGE } },
      builder,
    },
    join(dir, 'upaas.yml'),
  );
  const repo = await createRepo(config.paths.repos, 'hello', 'main');
  const work = join(dir, 'src');
  cpSync(join(PROJECT, 'examples/hello'), work, { recursive: true });
  const env = { GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'b@x', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'b@x' };
  await execa('git', ['init', '-q', '-b', 'main'], { cwd: work });
  await execa('git', ['add', '-A'], { cwd: work });
  await execa('git', ['commit', '-qm', 'bench'], { cwd: work, env });
  await execa('git', ['push', '-q', repo, 'main'], { cwd: work });
  return { config, state: State.open(config.paths.state), storage: new LocalStorage(IMAGE_STORAGE) };
}

async function runBuild(setup: Setup, fresh: boolean): Promise<Extract<BuildOutcome, { ok: true }>> {
  const lines: string[] = [];
  const outcome = await build(setup, { app: 'hello', fresh, onLine: (line) => lines.push(line) });
  if (!outcome.ok) throw new Error(`build failed:\n${lines.slice(-30).join('\n')}`);
  return outcome;
}

/** The same file work as the builder, as a plain shell pipeline. */
async function shellPipeline(packageFile: string, compression: 'zstd' | 'gzip', scratch: string): Promise<number> {
  const [unzip, zip] = compression === 'zstd' ? ['zstd -q -d -c', 'zstd -q -c -T0 -3'] : ['gzip -d -c', 'gzip -c -3'];
  const flags = '--numeric-owner --xattrs --xattrs-include=* --acls';
  const script = `set -e
root="$2/root"; out="$2/out"
mkdir -p "$root"
${unzip} < "$1" | tar --extract --file=- --preserve-permissions --same-owner ${flags} --directory "$root"
tar --create --file=- --sparse --one-file-system ${flags} --directory "$root" . | ${zip} | tee "$out" | sha256sum > /dev/null
sync "$out"
rm -rf "$root" "$out"`;
  const started = performance.now();
  await execa('sh', ['-c', script, 'bench', packageFile, scratch]);
  return performance.now() - started;
}

async function measure(builderConfig: Builder) {
  const { compression } = builderConfig;
  const dir = mkdtempSync(join(tmpdir(), `upaas-bench-${compression}-`));
  const setup = await setUp(dir, builderConfig);
  try {
    const first = await runBuild(setup, true);
    const builder: number[] = [];
    const total: number[] = [];
    const shell: number[] = [];
    let current = first.package;
    for (let round = 0; round < ROUNDS; round++) {
      const scratch = join(dir, 'shell');
      mkdirSync(scratch, { recursive: true });
      shell.push(await shellPipeline(join(IMAGE_STORAGE, current.storageKey), compression, scratch));
      const outcome = await runBuild(setup, false);
      builder.push(outcome.timings.totalMs - outcome.timings.commandMs);
      total.push(outcome.timings.totalMs);
      current = outcome.package;
    }
    return { builder: median(builder), total: median(total), shell: median(shell), bytes: current.bytes };
  } finally {
    setup.state.close();
    rmSync(dir, { recursive: true, force: true });
    // Packages of the bench apps are not kept next to the shared image.
    rmSync(join(IMAGE_STORAGE, 'packages', 'hello'), { recursive: true, force: true });
  }
}

const zstd = await measure({ compression: 'zstd' });
const unconfined = await measure({ compression: 'zstd', network: 'host', limits: { processes: 0, memory: 0, disk: 0 } });
const gzip = await measure({ compression: 'gzip' });
const rows = [
  ['incremental build, no change (zstd)', seconds(zstd.total), ''],
  ['  builder own work (total - commands)', seconds(zstd.builder), ''],
  ['  shell pipeline, same file work (zstd -T0)', seconds(zstd.shell), ''],
  ['  ratio builder / shell (target <= 1.1)', (zstd.builder / zstd.shell).toFixed(2), ''],
  ['incremental build, no change (gzip)', seconds(gzip.total), ''],
  ['  builder own work (gzip)', seconds(gzip.builder), ''],
  ['  shell pipeline (gzip)', seconds(gzip.shell), ''],
  ['  ratio builder / shell (gzip)', (gzip.builder / gzip.shell).toFixed(2), ''],
  ['gzip path / zstd path (builder own work)', (gzip.builder / zstd.builder).toFixed(2), ''],
  ['same build unconfined (network host, no limits)', seconds(unconfined.total), ''],
  ['  ratio confined / unconfined (total)', (zstd.total / unconfined.total).toFixed(2), ''],
  ['package size zstd / gzip', `${(zstd.bytes / 2 ** 20).toFixed(1)} MiB / ${(gzip.bytes / 2 ** 20).toFixed(1)} MiB`, ''],
];
console.log(`\nupaas builder benchmark: median of ${ROUNDS} rounds each, on ${process.env.HOSTNAME ?? 'this machine'}`);
for (const [name, value] of rows) console.log(`${(name as string).padEnd(48)} ${value}`);
