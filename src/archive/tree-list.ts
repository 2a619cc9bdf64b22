/**
 * The entries of a tree in the order its package archive holds them: GNU
 * tar's `--sort=name` order (the names in each folder bytewise, a folder just
 * before what it holds), listed by one `find -xdev` (tar's
 * --one-file-system: a mount point is listed, not entered). Sockets are left
 * out: tar does not archive them. Names are bytes: a file name need not be
 * UTF-8.
 */
import { execa } from 'execa';
import { joinedCommand } from '../process/join-cgroup.ts';

export interface TreeEntry {
  /** The name tar is given and writes: `.` or `./` and the path, as bytes. */
  name: Buffer;
  /** The name with each `/` as a NUL byte: Buffer.compare of keys is the archive's order. */
  key: Buffer;
  /** find's %y: f, d, l, b, c or p. */
  type: string;
  /** What the entry takes in the archive, about: a header and, for a file, its data. */
  bytes: number;
  /** `dev:inode` of a file with more than one name (tar stores the later names as links), else null. */
  inode: string | null;
}

/** The longest name (bytes, relative to the root) tar can be given to open: under the kernel's PATH_MAX (4096). */
export const LONGEST_NAME = 4000;

const SLASH = 0x2f;
const BLOCK = 512;
/** A header, and about one block of pax records (mtime, xattrs, a long name). */
const HEADER_BYTES = 2 * BLOCK;

/** The sort key of an archive name (see TreeEntry.key). */
export function sortKey(name: Buffer): Buffer {
  const key = Buffer.from(name);
  for (let at = key.indexOf(SLASH); at !== -1; at = key.indexOf(SLASH, at + 1)) key[at] = 0;
  return key;
}

/** The archive name of `path` relative to the tree (empty: the tree itself). */
export function archiveName(path: Buffer): Buffer {
  return path.length === 0 ? Buffer.from('.') : Buffer.concat([Buffer.from('./'), path]);
}

/**
 * Lists `root` in archive order. `find` runs through the build's cgroups
 * (`cgroupProcs`) and stops with `signal`, like every program of a build.
 */
export async function listTree(root: string, signal?: AbortSignal, cgroupProcs: readonly string[] = []): Promise<TreeEntry[]> {
  const [file, args] = joinedCommand(cgroupProcs, 'find', [root, '-xdev', '-printf', '%y %D:%i %n %s %P\\0']);
  const result = await execa(file, args, { encoding: 'buffer', stripFinalNewline: false, maxBuffer: 2 ** 30, reject: false, cancelSignal: signal, stdin: 'ignore' });
  if (result.exitCode !== 0) {
    throw new Error(`find exited with ${result.exitCode ?? result.signal}: ${Buffer.from(result.stderr).toString().trim().split('\n').slice(-3).join('; ')}`);
  }
  const out = Buffer.from(result.stdout);
  const entries: TreeEntry[] = [];
  let start = 0;
  for (let end = out.indexOf(0, start); end !== -1; start = end + 1, end = out.indexOf(0, start)) {
    const record = out.subarray(start, end);
    // Four fields without spaces, then the path, which may hold any byte but NUL.
    let at = 0;
    const fields: string[] = [];
    for (let field = 0; field < 4; field++) {
      const space = record.indexOf(0x20, at);
      if (space === -1) throw new Error(`find printed a record it was not asked for: ${JSON.stringify(record.toString())}`);
      fields.push(record.subarray(at, space).toString());
      at = space + 1;
    }
    const [type = '', inode = '', links = '', size = ''] = fields;
    if (type === 's') continue;
    const name = archiveName(record.subarray(at));
    const data = type === 'f' ? Math.ceil(Number(size) / BLOCK) * BLOCK : 0;
    entries.push({ name, key: sortKey(name), type, bytes: HEADER_BYTES + data, inode: type !== 'd' && Number(links) > 1 ? inode : null });
  }
  return entries.sort((a, b) => Buffer.compare(a.key, b.key));
}
