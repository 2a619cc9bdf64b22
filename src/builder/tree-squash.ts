/**
 * Squashing a cached tree: the upper layers of a stack (each build's
 * changes) made into one layer that shows, over the same bottom layer, the
 * same tree. The stack stays short (builder.cache.layers) without unpacking
 * the package again, and costs what the builds since the bottom layer
 * changed.
 *
 * The new layer is made from two views only: the merged tree (a read-only
 * overlay of the whole stack: whiteouts and opaque folders are the kernel's
 * to apply) and the bottom layer alone. Each name some upper layer holds is
 * looked up in both, in archive order:
 * - the tree has it, a folder, and the bottom layer has a folder there: the
 *   folder itself is copied (its contents merge with the bottom layer's),
 *   and each entry of the bottom layer's folder the tree lacks (an opaque
 *   folder above hid it) becomes a whiteout;
 * - the tree has it otherwise (a file, or a folder the bottom layer has not):
 *   it is copied whole, with everything under it;
 * - the tree lacks it and the bottom layer has it: a whiteout.
 * The copy is tar into tar (hard links among the names kept, folders' times
 * set last); whiteouts are character devices 0/0, as overlayfs makes them,
 * made before the copy so that it sets their folders' times. No opaque mark
 * is made: the whiteouts say what it would.
 */
import { lstat, mkdir, readdir } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { execa } from 'execa';
import { copyEntries, succeeded } from '../archive/tar.ts';
import { type TreeEntry, listTree, sortKey } from '../archive/tree-list.ts';
import { joinedCommand } from '../process/join-cgroup.ts';
import { syscalls } from '../sandbox/syscalls.ts';

export interface SquashOptions {
  /** The whole stack, mounted read-only. */
  merged: string;
  /** The bottom layer's tree. */
  bottom: string;
  /** The trees of the layers over it. */
  uppers: readonly string[];
  /** The new layer's tree (an empty folder). */
  into: string;
  signal?: AbortSignal;
  cgroupProcs?: readonly string[];
}

const SLASH = Buffer.from('/');
const NUL = 0;

/** Makes `into` the one layer that, over `bottom`, shows the tree `merged` shows. */
export async function squash(options: SquashOptions): Promise<void> {
  const { merged, bottom, into, signal } = options;
  const procs = options.cgroupProcs ?? [];
  const names = new Map<string, Buffer>();
  for (const layer of options.uppers) {
    for (const entry of await listTree(layer, signal, procs)) names.set(entry.key.toString('latin1'), entry.name);
  }
  const ordered = [...names.values()].map((name) => ({ name, key: sortKey(name) })).sort((a, b) => Buffer.compare(a.key, b.key));
  // What is copied whole comes from the tree's own listing (in archive order: a folder's names follow it).
  const tree = await listTree(merged, signal, procs);
  const subtree = (key: Buffer): Buffer[] => {
    let at = lowerBound(tree, key);
    const found: Buffer[] = [];
    for (; at < tree.length && ((tree[at] as TreeEntry).key.equals(key) || isUnder((tree[at] as TreeEntry).key, key)); at++) found.push((tree[at] as TreeEntry).name);
    return found;
  };
  const copies: Buffer[] = [];
  const whiteouts = new Map<string, Buffer>();
  // A name whose whole subtree is decided (copied whole, or gone): the names under it follow it in archive order.
  let decided: Buffer | null = null;
  for (const { name, key } of ordered) {
    signal?.throwIfAborted();
    if (decided && isUnder(key, decided)) continue;
    const [inTree, inBottom] = await Promise.all([lstatOf(merged, name), lstatOf(bottom, name)]);
    if (!inTree) {
      if (inBottom) whiteouts.set(key.toString('latin1'), name);
      decided = key;
    } else if (inTree.isDirectory() && inBottom?.isDirectory()) {
      copies.push(name);
      const there = new Set((await readdir(pathOf(merged, name), { encoding: 'buffer' })).map((child) => child.toString('latin1')));
      for (const child of await readdir(pathOf(bottom, name), { encoding: 'buffer' })) {
        if (there.has(child.toString('latin1'))) continue;
        const gone = Buffer.concat([name, SLASH, child]);
        whiteouts.set(sortKey(gone).toString('latin1'), gone);
      }
    } else if (inTree.isDirectory()) {
      copies.push(...subtree(key));
      decided = key;
    } else {
      copies.push(name);
      decided = key;
    }
  }
  const gone = [...whiteouts.values()];
  for (const name of gone) await mkdir(pathOf(into, parentOf(name)), { recursive: true });
  await makeWhiteouts(gone.map((name) => pathOf(into, name)), signal, procs);
  await copyEntries(merged, copies, into, signal, procs);
}

/** Whether `key` lies under the name whose key is `parent`. */
function isUnder(key: Buffer, parent: Buffer): boolean {
  return key.length > parent.length && key[parent.length] === NUL && key.subarray(0, parent.length).equals(parent);
}

/** The first entry of `entries` (in key order) whose key is not below `key`. */
function lowerBound(entries: readonly TreeEntry[], key: Buffer): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (Buffer.compare((entries[middle] as TreeEntry).key, key) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The host path of archive name `name` ("." or "./...") in the tree `root`, as bytes. */
function pathOf(root: string, name: Buffer): Buffer {
  return name.length === 1 ? Buffer.from(root) : Buffer.concat([Buffer.from(root), name.subarray(1)]);
}

function parentOf(name: Buffer): Buffer {
  const at = name.lastIndexOf(SLASH);
  return at <= 1 ? Buffer.from('.') : name.subarray(0, at);
}

async function lstatOf(root: string, name: Buffer): Promise<Stats | null> {
  return lstat(pathOf(root, name)).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return null;
    throw error;
  });
}

/** mknodat(2) of a character device 0/0 at each path (NUL-separated on stdin). */
const WHITEOUTS = `
use strict;
my $nr = shift;
local $/ = "\\0";
while (my $path = <STDIN>) {
  chomp $path;
  syscall($nr, -100, $path, 0020000, 0) == 0 or die "upaas: cannot make a whiteout at $path: $!\\n";
}
`;

/** Makes a whiteout at each of `paths`, in the build's cgroups. */
async function makeWhiteouts(paths: Buffer[], signal: AbortSignal | undefined, procs: readonly string[]): Promise<void> {
  if (paths.length === 0) return;
  const [file, args] = joinedCommand(procs, 'perl', ['-e', WHITEOUTS, String(syscalls().mknodat)]);
  const input = Buffer.concat(paths.flatMap((path) => [path, Buffer.from([NUL])]));
  succeeded('perl (whiteouts)', await execa(file, args, { input, reject: false, cancelSignal: signal, stdout: 'ignore' }));
}
