/**
 * Repositories on the host: turning an app name into its bare repo path (the
 * one security boundary for names), and read-only queries on that bare repo.
 * No git command ever runs on the host over an app's checkout; checkouts live
 * only inside build chroots.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { isAppName } from '../config/patterns.ts';
import { capture, captureBytes } from '../process/run.ts';
import { projectPath } from '../project.ts';
import type { ChangelogEntry } from '../state/packages.ts';


/**
 * A repo being deleted is first renamed to ".deleted-NAME-RANDOM" (no name a
 * user can give starts with a dot); these say what the folder is, and whose.
 */
export const trashName = (app: string, random: string) => `.deleted-${app}-${random}`;
export const trashedApp = (entry: string): string | undefined => /^\.deleted-(.+)-[0-9a-f]{12}$/.exec(entry)?.[1];

export class RepoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RepoError';
  }
}

/**
 * The app name from what a user typed ("myapp" or "myapp.git"), or a
 * RepoError. Idempotent: a name never ends in ".git" itself, so "a.git.git"
 * is refused instead of becoming the app "a.git" (whose repo is a.git.git on
 * disk, but whose access check, done on the name once more stripped, was a's).
 */
export function repoNameFrom(input: string): string {
  const name = input.endsWith('.git') ? input.slice(0, -4) : input;
  if (!isAppName(name)) {
    throw new RepoError(
      `invalid app name ${JSON.stringify(input)}: expected lowercase letters, digits, ".", "_" and "-", starting with a letter or digit (and an optional ".git" once)`,
    );
  }
  return name;
}

/** Whether `name` is an app name as repoNameFrom makes them (records and folders of other names are no repo's). */
export function isRepoName(name: string): boolean {
  try {
    return repoNameFrom(name) === name;
  } catch {
    return false;
  }
}

/** `path` when it lies inside `base`, else a RepoError. */
export function ensureWithin(base: string, path: string): string {
  const resolved = resolve(base, path);
  const rel = relative(resolve(base), resolved);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || resolve(base, rel) !== resolved) {
    throw new RepoError(`path ${JSON.stringify(path)} leaves its folder`);
  }
  return resolved;
}

/** The bare repo of an app, or null when there is none; throws RepoError for a bad name. */
export function existingRepoPath(reposDir: string, app: string): string | null {
  const path = ensureWithin(reposDir, `${repoNameFrom(app)}.git`);
  return existsSync(join(path, 'HEAD')) ? path : null;
}

/** The bare repo of an app; throws RepoError for a bad name or a missing repo (the message names no server path). */
export function repoPath(reposDir: string, app: string): string {
  const path = existingRepoPath(reposDir, app);
  if (path === null) throw new RepoError(`no repository named ${app}`);
  return path;
}

/** git on the host reads no system or global config and never prompts. */
export const GIT_ENV = { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0' };

const git = (repo: string, args: string[]) => capture('git', ['--git-dir', repo, ...args], { env: GIT_ENV });

/** What `git rev-parse` is given: a branch, tag or sha and the usual suffixes; never an option. */
export const REVISION_INPUT = /^(?!-)[A-Za-z0-9._/^~@{}-]{1,255}$/;

/** The commit sha of `rev` (a branch, tag or sha), or a RepoError. */
export async function resolveRevision(repo: string, rev: string): Promise<string> {
  if (!REVISION_INPUT.test(rev)) throw new RepoError(`invalid revision ${JSON.stringify(rev)}`);
  // A full ref name means that ref: rev-parse would fall back to refs/tags/<name> (a tag a writer named so).
  const exact = rev.startsWith('refs/') ? await refTarget(repo, rev) : rev;
  try {
    if (exact === null) throw new RepoError('no such ref');
    return (await git(repo, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${exact}^{commit}`])).trim();
  } catch {
    throw new RepoError(`revision ${rev} does not exist in the repository`);
  }
}

/** The object the ref named exactly `ref` points at in the bare repo at `repo`, or null when there is no such ref. */
export async function refTarget(repo: string, ref: string): Promise<string | null> {
  const lines = (await git(repo, ['for-each-ref', '--format=%(objectname) %(refname)', '--', ref])).split('\n');
  const line = lines.find((entry) => entry.slice(entry.indexOf(' ') + 1) === ref);
  return line ? line.slice(0, line.indexOf(' ')) : null;
}

/** A file's bytes at a revision, or null when the revision has no such file. */
export async function readFileAt(repo: string, revision: string, path: string, maxBytes = Infinity): Promise<Buffer | null> {
  const spec = `${revision}:${path}`;
  try {
    const type = (await git(repo, ['cat-file', '-t', spec])).trim();
    if (type !== 'blob') return null;
  } catch {
    return null;
  }
  if (Number.isFinite(maxBytes)) {
    const bytes = Number((await git(repo, ['cat-file', '-s', spec])).trim());
    if (bytes > maxBytes) throw new FileTooLargeError(path, bytes, maxBytes);
  }
  return captureBytes('git', ['--git-dir', repo, 'cat-file', 'blob', spec], { env: GIT_ENV });
}

export class FileTooLargeError extends Error {
  constructor(
    readonly path: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`${path} is ${bytes} bytes; the limit is ${limit}`);
    this.name = 'FileTooLargeError';
  }
}

export interface CommitInfo {
  revision: string;
  author: string;
  date: string;
  subject: string;
  description: string;
}

/**
 * What is read of a commit is bounded, whatever a writer put in it: git cuts
 * names and the subject (`%<(N,trunc)` pads to N columns too, trimmed again
 * below), and a message is read up to COMMIT_BYTES.
 */
const FIELDS = '%H%x00%<(200,trunc)%an <%<(200,trunc)%ae>%x00%aI%x00%<(1000,trunc)%s';
const FORMAT = `${FIELDS}%x00%B%x1e`;
const LOG_FORMAT = `${FIELDS}%x1e`;
/** Bytes read of one commit with its message (the rest of a longer message is left out). */
const COMMIT_BYTES = 64 * 1024;
/** Bytes read of a changelog (its subjects are cut at 1,000 characters each). */
const CHANGELOG_BYTES = 1024 * 1024;

function parseCommits(text: string): CommitInfo[] {
  return text
    .split('\x1e')
    .map((chunk) => chunk.replace(/^\n/, ''))
    .filter((chunk) => chunk.includes('\x00'))
    .map((chunk) => {
      const [revision = '', author = '', date = '', subject = '', body = ''] = chunk.split('\x00');
      return { revision, author: author.replace(/ +</, ' <').replace(/ +>$/, '>').trim(), date, subject: subject.trimEnd(), description: body.trim() };
    });
}

/** `git log ARGS` on a bare repo, at most `maxBytes` of its output. */
const gitLog = async (repo: string, args: string[], maxBytes: number) =>
  (await captureBytes('git', ['--git-dir', repo, 'log', ...args], { env: GIT_ENV, maxBytes })).toString('utf8');

export async function commitInfo(repo: string, revision: string): Promise<CommitInfo> {
  const [info] = parseCommits(await gitLog(repo, ['-1', `--format=${FORMAT}`, revision, '--'], COMMIT_BYTES));
  if (!info) throw new RepoError(`cannot read commit ${revision}`);
  return info;
}

/**
 * The commits that `to` adds over `from` (newest first, at most `limit`).
 * When `from` is unknown (first package, or history rewritten), only `to`.
 */
export async function changelog(repo: string, from: string | null, to: string, limit = 200): Promise<ChangelogEntry[]> {
  let range = [to, '-1'];
  if (from) {
    const known = await git(repo, ['cat-file', '-e', `${from}^{commit}`]).then(
      () => true,
      () => false,
    );
    if (known) range = [`${from}..${to}`];
  }
  const commits = parseCommits(await gitLog(repo, [`--max-count=${limit}`, `--format=${LOG_FORMAT}`, ...range, '--'], CHANGELOG_BYTES));
  return commits.map(({ revision, author, date, subject }) => ({ revision, author, date, subject }));
}

/**
 * Creates the bare repo of an app (idempotent), with upaas's hooks; returns
 * its path. The repos folder and each repo are root's alone (0700): they hold
 * every app's code and history, readable by its grantees only through the server.
 */
export async function createRepo(reposDir: string, app: string, branch: string): Promise<string> {
  await ensureReposDir(reposDir);
  const path = ensureWithin(reposDir, `${repoNameFrom(app)}.git`);
  if (!existsSync(join(path, 'HEAD'))) {
    await mkdir(path, { mode: 0o700, recursive: true });
    await capture('git', ['init', '--quiet', '--bare', `--initial-branch=${branch}`, '--', path], { env: GIT_ENV });
    await git(path, ['config', 'receive.advertisePushOptions', 'true']);
  }
  await chmod(path, 0o700);
  await installHooks(path);
  return path;
}

/** Makes the repos folder (0700) and takes group and other access away from it and every repo in it. */
async function ensureReposDir(reposDir: string): Promise<void> {
  await mkdir(reposDir, { recursive: true, mode: 0o700 });
  await chmod(reposDir, 0o700);
}

/** At server start: the repos folder and every repo in it root-only, whatever an older version or a copy left. */
export async function lockDownRepos(reposDir: string): Promise<void> {
  await ensureReposDir(reposDir);
  for (const entry of await readdir(reposDir, { withFileTypes: true })) {
    if (entry.isDirectory() && !entry.isSymbolicLink()) await chmod(join(reposDir, entry.name), 0o700);
  }
}

/**
 * upaas's hook shims (hooks/), in the order they are put in place: post-receive
 * first, which leaves a push that pre-receive builds alone, so a repo is never
 * left with a pre-receive that builds beside a post-receive that builds again.
 */
const HOOK_SHIMS = ['post-receive', 'update', 'pre-receive'].map((name) => ({ name, file: projectPath(`hooks/${name}`) }));

/** Puts the hook shims in place (each when missing or different). */
export async function installHooks(repo: string): Promise<void> {
  for (const { name, file } of HOOK_SHIMS) {
    const target = join(repo, 'hooks', name);
    const shim = await readFile(file, 'utf8');
    const present = await readFile(target, 'utf8').catch(() => null);
    if (present === shim) continue;
    await mkdir(join(repo, 'hooks'), { recursive: true });
    await writeFile(`${target}.tmp`, shim, { mode: 0o755 });
    await rename(`${target}.tmp`, target);
  }
}

/** The app names that have a bare repo under reposDir. */
export async function listRepos(reposDir: string): Promise<string[]> {
  const entries = await readdir(reposDir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isDirectory() && entry.name.endsWith('.git'))
    .map((entry) => entry.name.slice(0, -4))
    // Only folders a name leads to (an older version made "a.git.git" for the app "a.git").
    .filter(isRepoName)
    .filter((name) => existsSync(join(reposDir, `${name}.git`, 'HEAD')))
    .sort();
}

/** Branch names and their head commits. */
export async function branches(repo: string): Promise<{ name: string; revision: string }[]> {
  const out = await git(repo, ['for-each-ref', '--format=%(refname:short) %(objectname)', 'refs/heads/']);
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [name = '', revision = ''] = line.split(' ');
      return { name, revision };
    });
}
