/**
 * `upaas example [--fresh]` (`npm run example`): a first build without any client.
 * Commits the example app (examples/hello) into the repo `example` under
 * paths.repos, the way a push would, and builds it with the loaded config.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appSettings } from '../config/config.ts';
import { runBuild } from '../core/builds.ts';
import { exitCodeFor } from '../builder/errors.ts';
import { createRepo } from '../git/repos.ts';
import { capture } from '../process/run.ts';
import { defineCommand } from '../commands/command.ts';
import { projectPath } from '../project.ts';

const EXAMPLE_DIR = projectPath('examples/hello');

export const exampleCommand = defineCommand({
  name: 'example',
  summary: 'commit the bundled example app into repo "example" and build it',
  positionals: [],
  options: { fresh: { type: 'boolean' } },
  access: 'admin',
  async run({ io, services }, { values }) {
    const all = services();
    const { config } = all;
    const repo = await createRepo(config.paths.repos, 'example', appSettings(config, 'example').branch);
    await commitDirectory(EXAMPLE_DIR, repo, appSettings(config, 'example').branch);
    io.out(`-----> example app committed to ${repo}; building it (the first build bootstraps the system image)\n`);
    const outcome = await runBuild(all, { app: 'example', fresh: values.fresh, requestedBy: 'npm run example', onLine: (line) => io.out(`${line}\n`) });
    if (outcome.ok) io.out(`\nSee it with: npx upaas packages example\n`);
    return outcome.ok ? 0 : exitCodeFor(outcome.error.kind);
  },
});

/** Commits the files of `dir` onto `branch` of the bare repo (no commit when nothing changed). */
async function commitDirectory(dir: string, repo: string, branch: string): Promise<void> {
  const index = await mkdtemp(join(tmpdir(), 'upaas-example-'));
  try {
    const env = {
      GIT_DIR: repo,
      GIT_WORK_TREE: dir,
      GIT_INDEX_FILE: join(index, 'index'),
      GIT_AUTHOR_NAME: 'upaas example',
      GIT_AUTHOR_EMAIL: 'example@upaas.invalid',
      GIT_COMMITTER_NAME: 'upaas example',
      GIT_COMMITTER_EMAIL: 'example@upaas.invalid',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
    };
    await capture('git', ['add', '--all', '.'], { env, cwd: dir });
    const tree = (await capture('git', ['write-tree'], { env, cwd: dir })).trim();
    const parent = await capture('git', ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`], { env }).then(
      (out) => out.trim(),
      () => null,
    );
    if (parent && (await capture('git', ['rev-parse', `${parent}^{tree}`], { env })).trim() === tree) return;
    const commit = (
      await capture('git', ['commit-tree', tree, '-m', 'example app', ...(parent ? ['-p', parent] : [])], { env })
    ).trim();
    await capture('git', ['update-ref', `refs/heads/${branch}`, commit], { env });
  } finally {
    await rm(index, { recursive: true, force: true });
  }
}
