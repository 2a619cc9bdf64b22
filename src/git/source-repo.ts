/**
 * The repo a pre-receive build reads: the pushed objects are still in git's
 * quarantine folder and no ref has moved, so the server makes a temporary
 * bare repo that borrows the app repo's objects and the quarantined ones
 * (git alternates), with the app's refs and the push's updates applied.
 *
 * Borrowed object folders are linked beside the repo as `objects-N` and
 * written in its alternates file as `../../objects-N`: the builder binds each
 * beside the repo in the chroot too (builder/steps/checkout.ts), so the one
 * file resolves on the host and in the chroot.
 */
import { lstat, mkdir, readFile, realpath, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { capture } from '../process/run.ts';
import { GIT_ENV } from './repos.ts';

const ZERO = /^0+$/;

/** The names a borrowed object folder may have beside the repo. */
const BORROWED_NAME = /^objects-[0-9]{1,2}$/;

/** A ref update of a push: the ref and its new object (all zeros: deleted). */
export interface PushedRef {
  ref: string;
  new: string;
}

/** The alternates line of the object folder NAME beside the repo (see above). */
function borrowedEntry(name: string): string {
  if (!BORROWED_NAME.test(name)) throw new Error(`invalid borrowed object folder name ${JSON.stringify(name)}`);
  return `../../${name}`;
}

/** The object folders `repo` borrows beside itself, by name and host path (none for an app's own repo). */
export async function borrowedFolders(repo: string): Promise<{ name: string; path: string }[]> {
  const alternates = await readFile(join(repo, 'objects', 'info', 'alternates'), 'utf8').catch(() => '');
  return alternates
    .split('\n')
    .map((line) => /^\.\.\/\.\.\/(.+)$/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined && BORROWED_NAME.test(name))
    .map((name) => ({ name, path: join(dirname(repo), name) }));
}

/**
 * The folder that holds the push's objects until its refs move: the name the
 * shim sent (already checked against git's pattern) inside the repo's
 * objects folder, and a real folder there; null when the push sent no objects.
 */
export async function quarantineFolder(repo: string, name: string | undefined): Promise<string | null> {
  if (name === undefined) return null;
  const folder = join(await realpath(join(repo, 'objects')), name);
  const stat = await lstat(folder);
  if (!stat.isDirectory()) throw new Error(`the push's object folder ${name} is not a folder`);
  return folder;
}

/**
 * Makes FOLDER/repo.git, the repo a pre-receive build reads: a bare repo that
 * borrows the app repo's objects and the push's quarantined ones (linked
 * beside it as objects-N, which checkout.ts binds into the chroot the same
 * way), whose refs are the app's with the push's updates applied, and whose
 * HEAD is the deploy branch.
 */
export async function makeSourceRepo(folder: string, repo: string, quarantine: string | null, branch: string, updates: readonly PushedRef[]): Promise<string> {
  const source = join(folder, 'repo.git');
  await execa('git', ['init', '--quiet', '--bare', '--template=', `--initial-branch=${branch}`, '--', source], { env: GIT_ENV });
  const borrowed = [await realpath(join(repo, 'objects')), ...(quarantine ? [quarantine] : [])];
  const entries: string[] = [];
  for (const [index, target] of borrowed.entries()) {
    const name = `objects-${index}`;
    await symlink(target, join(folder, name));
    entries.push(borrowedEntry(name));
  }
  await mkdir(join(source, 'objects', 'info'), { recursive: true });
  await writeFile(join(source, 'objects', 'info', 'alternates'), `${entries.join('\n')}\n`);
  await writeFile(join(source, 'packed-refs'), packedRefs(await refsOf(repo), updates));
  return source;
}

/** The refs of a bare repo and their objects. */
async function refsOf(repo: string): Promise<Map<string, string>> {
  const text = await capture('git', ['--git-dir', repo, 'for-each-ref', '--format=%(objectname) %(refname)'], { env: GIT_ENV });
  const refs = new Map<string, string>();
  for (const line of text.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) refs.set(line.slice(space + 1), line.slice(0, space));
  }
  return refs;
}

/** A packed-refs file (no header: git sorts it when it reads it) of `refs` with `updates` applied. */
function packedRefs(refs: Map<string, string>, updates: readonly PushedRef[]): string {
  const after = new Map(refs);
  for (const update of updates) {
    if (ZERO.test(update.new)) after.delete(update.ref);
    else after.set(update.ref, update.new);
  }
  return [...after].map(([ref, sha]) => `${sha} ${ref}\n`).join('');
}
