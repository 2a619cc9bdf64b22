/**
 * Test worlds: a temp folder with repos/, state/ and an upaas.yml, real git
 * repos and commits, and the real CLI run as a child process. Fast worlds
 * bootstrap a tiny fixture image (test/fixtures/make-image.sh); real worlds
 * use debootstrap and share one cached image.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { dump, load } from 'js-yaml';
import { createRepo } from '../../src/git/repos.ts';
import { detectLayout, parentFolders, parentName } from '../../src/sandbox/cgroups.ts';

export const PROJECT = fileURLToPath(new URL('../..', import.meta.url));
export const FIXTURE_BOOTSTRAP = join(PROJECT, 'test/fixtures/make-image.sh');

/** One storage folder per test run for fast worlds, so the fixture image is made once. */
let sharedFastStorage: string | null = null;
export function fastStorageDir(): string {
  if (sharedFastStorage === null) {
    const dir = mkdtempSync(join(tmpdir(), 'upaas-test-storage-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    sharedFastStorage = dir;
  }
  return sharedFastStorage;
}

/** A deep merge of plain objects (right wins); lists are replaced. */
export function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] =
      value && typeof value === 'object' && !Array.isArray(value) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? merge(prev as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

export function fastConfig(storageDir: string): Record<string, unknown> {
  return {
    storage: { settings: { dir: storageDir } },
    bootstrap: { commands: [`sh ${FIXTURE_BOOTSTRAP} %workdir%`], packages: [], timelimit: 60 },
    commands: {
      timelimit: 60,
      install: {
        cmd: 'fixture-install %package%',
        env: {},
        check: 'test -e /var/lib/fixture/installed/%package%',
        // Stands for the network: a build that refreshes leaves its mark.
        refresh: ['echo "lists refreshed" >> /var/lib/fixture/refreshed'],
      },
    },
    interpreters: {
      actions: {
        setup: {
          system: 'echo system action ran > /var/lib/fixture/system-ran',
          finalize: ['rm -rf /tmp/*', 'env | sort > /var/lib/fixture/finalize-env'],
        },
      },
      static: { any: {} },
      shell: {
        any: {
          packages: ['fixture-lib'],
          env: { FROM_ANY: 'any', SHARED: 'any' },
          actions: {
            setup: {
              interpreter: ['echo "$UPAAS_INTERPRETER_VERSION" > /var/lib/fixture/interpreter', 'env | sort > /var/lib/fixture/interpreter-env'],
              main: 'echo admin-main > main-ran',
            },
          },
        },
        '1.0': { env: { SHARED: 'v1' } },
        '2.0': { env: { SHARED: 'v2' } },
        '2.10': { env: { SHARED: 'v2.10' } },
      },
    },
  };
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  lines: string[];
}

export interface PackageJson {
  id: string;
  parent: string | null;
  fresh: boolean;
  revision: string;
  interpreter: { type: string; version: string };
  bytes: number;
  createdAt: string;
  current: boolean;
  changelog: { revision: string; subject: string }[];
}

export class World {
  readonly dir: string;
  readonly configFile: string;
  readonly storageDir: string;

  constructor(overrides: Record<string, unknown> = {}, base: Record<string, unknown> = fastConfig(fastStorageDir())) {
    this.dir = mkdtempSync(join(tmpdir(), 'upaas-world-'));
    this.configFile = join(this.dir, 'upaas.yml');
    const config = merge(base, overrides);
    const storage = (config.storage as { settings?: { dir?: string } } | undefined)?.settings?.dir;
    this.storageDir = storage ?? join(this.dir, 'state/storage');
    writeFileSync(this.configFile, dump(config));
  }

  /** Merges `over` into the config file. */
  update(over: Record<string, unknown>): void {
    const config = load(readFileSync(this.configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(this.configFile, dump(merge(config, over)));
  }

  /** Merges `server` into the `server` section of the config. */
  setServer(server: Record<string, unknown>): void {
    this.update({ server });
  }

  get workdir(): string {
    return join(this.dir, 'state/work');
  }

  /** Runs `upaas -c upaas.yml ARGS` as a real process. */
  async cli(...args: string[]): Promise<CliResult> {
    return this.cliWithInput('', ...args);
  }

  /** Runs `upaas -c upaas.yml ARGS` with `input` on standard input. */
  async cliWithInput(input: string, ...args: string[]): Promise<CliResult> {
    const result = await execa('node', [join(PROJECT, 'bin/upaas.js'), '-c', this.configFile, ...args], {
      reject: false,
      cwd: this.dir,
      input,
    });
    const stdout = String(result.stdout);
    return { exitCode: result.exitCode ?? -1, stdout, stderr: String(result.stderr), lines: stdout.split('\n') };
  }

  async packages(app: string): Promise<PackageJson[]> {
    const result = await this.cli('packages', app, '--json');
    if (result.exitCode !== 0) throw new Error(`packages failed: ${result.stderr}`);
    return JSON.parse(result.stdout) as PackageJson[];
  }

  /** A new app: its bare repo under repos/ and a working clone to commit from. */
  async app(name: string): Promise<AppRepo> {
    const bare = await createRepo(join(this.dir, 'repos'), name, 'main');
    const work = join(this.dir, 'src', name);
    mkdirSync(work, { recursive: true });
    await git(work, 'init', '--quiet', '--initial-branch=main');
    await git(work, 'remote', 'add', 'origin', bare);
    return new AppRepo(work, bare);
  }

  packageFile(app: string, pkg: PackageJson): string {
    return join(this.storageDir, 'packages', app, `${pkg.id}.tar.zst`);
  }

  /** Unpacks a stored package into a folder and returns it. */
  async unpack(app: string, pkg: PackageJson): Promise<string> {
    const target = join(this.dir, 'unpacked', pkg.id.slice(0, 12));
    mkdirSync(target, { recursive: true });
    await execa('tar', [
      '--extract',
      '--zstd',
      '--numeric-owner',
      '--same-owner',
      '--preserve-permissions',
      '--xattrs',
      '--xattrs-include=*',
      '--file',
      this.packageFile(app, pkg),
      '--directory',
      target,
    ]);
    return target;
  }

  /** What a build left behind: temp folders, mounts, processes rooted in the world. */
  leftovers(): string[] {
    const found: string[] = [];
    if (existsSync(this.workdir)) for (const entry of readdirSync(this.workdir)) found.push(`temp dir ${entry}`);
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const point = line.split(' ')[1];
      if (point?.startsWith(this.dir)) found.push(`mount ${point}`);
    }
    for (const pid of readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p))) {
      try {
        const root = readlinkSync(`/proc/${pid}/root`);
        const cwd = readlinkSync(`/proc/${pid}/cwd`);
        if (root.startsWith(this.dir) || cwd.startsWith(this.workdir)) {
          found.push(`process ${pid} (${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')})`);
        }
      } catch {
        // gone meanwhile
      }
    }
    return found;
  }

  /** Removes the world, and the (empty) cgroup folders its builds had under their parent. */
  remove(): void {
    removeCgroupParents(join(this.dir, 'state'));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** rmdir of the cgroup parent folders of the server whose paths.state is `stateDir` (left when empty after its builds). */
export function removeCgroupParents(stateDir: string): void {
  const layout = detectLayout();
  const folders = [...parentFolders(layout, parentName(stateDir))];
  if (layout.version === 1 && layout.unified) folders.push(join(layout.unified, parentName(stateDir)));
  for (const folder of folders) {
    try {
      rmdirSync(folder);
    } catch {
      // absent, or a build of it still runs
    }
  }
}

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const result = await execa('git', args, {
    cwd,
    env: {
      GIT_AUTHOR_NAME: 'Test Dev',
      GIT_AUTHOR_EMAIL: 'dev@example.invalid',
      GIT_COMMITTER_NAME: 'Test Dev',
      GIT_COMMITTER_EMAIL: 'dev@example.invalid',
      GIT_CONFIG_GLOBAL: '/dev/null',
    },
  });
  return String(result.stdout).trim();
}

export class AppRepo {
  constructor(
    readonly work: string,
    readonly bare: string,
  ) {}

  /** Writes files (a value of null deletes), commits and pushes to the bare repo; returns the sha. */
  async commit(files: Record<string, string | null>, message = 'change', branch = 'main'): Promise<string> {
    for (const [path, content] of Object.entries(files)) {
      const full = join(this.work, path);
      if (content === null) rmSync(full, { force: true });
      else {
        mkdirSync(dirname(full), { recursive: true });
        writeFileSync(full, content);
      }
    }
    await git(this.work, 'add', '--all');
    await git(this.work, 'commit', '--quiet', '--allow-empty', '-m', message);
    await git(this.work, 'push', '--quiet', '--force', 'origin', `HEAD:refs/heads/${branch}`);
    return git(this.work, 'rev-parse', 'HEAD');
  }
}

/** App metadata as YAML text. */
export const metadata = (value: Record<string, unknown>): string => dump(value);
