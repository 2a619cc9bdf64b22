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
import { mkdir } from 'node:fs/promises';
import { execa } from 'execa';
import { copyEntries, succeeded } from '../archive/tar.ts';
import { LONGEST_NAME, type TreeEntry, listTree, sortKey } from '../archive/tree-list.ts';
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
  /** Seconds the copy may take (commands.timelimit). */
  timeoutSeconds?: number;
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
  // Both views listed once (in archive order: a folder's names follow it); every look-up is in these lists.
  const [tree, below] = await Promise.all([listTree(merged, signal, procs), listTree(bottom, signal, procs)]);
  const copies: Buffer[] = [];
  const whiteouts = new Map<string, Buffer>();
  const gone = (name: Buffer, key: Buffer) => whiteouts.set(key.toString('latin1'), name);
  /** Folders both views have: the bottom layer's entries in them that the tree lacks get whiteouts. */
  const merging = new Set<string>();
  // A name whose whole subtree is decided (copied whole, or gone): the names under it follow it in archive order.
  let decided: Buffer | null = null;
  for (const { name, key } of ordered) {
    signal?.throwIfAborted();
    if (decided && isUnder(key, decided)) continue;
    const inTree = entryOf(tree, key);
    const inBottom = entryOf(below, key);
    if (!inTree) {
      if (inBottom) gone(name, key);
      decided = key;
    } else if (inTree.type === 'd' && inBottom?.type === 'd') {
      copies.push(name);
      merging.add(key.toString('latin1'));
    } else if (inTree.type === 'd') {
      for (let at = lowerBound(tree, key); at < tree.length && isWithin((tree[at] as TreeEntry).key, key); at++) copies.push((tree[at] as TreeEntry).name);
      decided = key;
    } else {
      copies.push(name);
      decided = key;
    }
  }
  for (const entry of below) {
    const parent = entry.key.subarray(0, Math.max(entry.key.lastIndexOf(NUL), 0));
    if (merging.has(parent.toString('latin1')) && !entryOf(tree, entry.key)) gone(entry.name, entry.key);
  }
  if (copies.some((name) => name.length >= LONGEST_NAME)) throw new Error('a name in the tree is too long to be copied by its name');
  const made = [...whiteouts.values()];
  for (const name of made) await mkdir(pathOf(into, parentOf(name)), { recursive: true });
  await makeWhiteouts(made.map((name) => pathOf(into, name)), signal, procs);
  await copyEntries(merged, copies, into, { signal, cgroupProcs: procs, timeoutSeconds: options.timeoutSeconds });
}

/** The entry of `key` in `entries` (in key order), if there is one. */
function entryOf(entries: readonly TreeEntry[], key: Buffer): TreeEntry | null {
  const found = entries[lowerBound(entries, key)];
  return found?.key.equals(key) ? found : null;
}

/** Whether `key` is the name whose key is `top` or lies under it. */
function isWithin(key: Buffer, top: Buffer): boolean {
  return key.equals(top) || isUnder(key, top);
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
  const [file, args] = joinedCommand(procs, 'perl', ['-e', WHITEOUTS, '--', String(syscalls().mknodat)]);
  const input = Buffer.concat(paths.flatMap((path) => [path, Buffer.from([NUL])]));
  succeeded('perl (whiteouts)', await execa(file, args, { input, reject: false, cancelSignal: signal, stdout: 'ignore' }));
}
