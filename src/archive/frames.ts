/**
 * Package archives made of frames, so that a build pays for what it changed.
 *
 * An archive is one ordinary `.tar.zst` (or `.tar.gz`): the tar stream of the
 * whole tree, its members in tar's `--sort=name` order (tree-list.ts), cut at
 * member boundaries into pieces of about FRAME_BYTES that are compressed each
 * into a frame of its own (gzip: a member of its own), and a last frame with
 * tar's end blocks. Concatenated frames decompress to the concatenated
 * stream, so `zstd -d | tar -x` reads it like any other.
 *
 * The frame index (recorded with the package) says, for each frame, the
 * range of names it covers (from its first key to the next frame's), a hash
 * of the names in that range (with the head of each hard-link group), and
 * where its bytes are. A build over the cached tree of that package knows
 * what it changed: the names in its overlay's upper layer. A range holding
 * none of them, whose names and link heads are as they were, has the very
 * bytes it had (the files below are the package's, read-only), so its frame
 * is copied from the package before; only the other ranges go through tar
 * and the compressor. Hard links are the one thing that crosses ranges: tar
 * stores a later name of a file as a link to the first (with the file's
 * mode, owner and time), so a file changed through any of its names makes
 * again every range holding one of them, and the range of a group's first
 * name is made again with any range that holds another name of the group.
 * Whatever reads the package before checks its hash (storage), so it is read
 * only when its frames to copy hold at least as much as the pieces to make:
 * otherwise the tree is packed whole.
 */
import { createHash } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { type ResultPromise, execa } from 'execa';
import { joinedCommand } from '../process/join-cgroup.ts';
import { ByteReader, readMember } from './tar-reader.ts';
import { LONGEST_NAME, type TreeEntry, listTree, sortKey } from './tree-list.ts';
import { type Compression, TAR_CREATE, succeeded } from './tar.ts';

/**
 * About how much of the tar stream goes into one frame: a whole tree is cut
 * coarsely (a compressor start per frame costs about 10 ms, and one large
 * frame uses every core), a range made again finely (it is where builds make
 * changes, and the next build copies more of it).
 */
export const WHOLE_FRAME_BYTES = 32 * 2 ** 20;
export const FRAME_BYTES = 4 * 2 ** 20;
/** A piece planned larger than twice `made` streams through a compressor using every core; smaller ones are held, compressed beside each other. */
interface FrameSizes {
  whole: number;
  made: number;
}
/** tar's end: two zero blocks (the padding of its last record is left out: readers stop at these). */
const END_BLOCKS = 2 * 512;

export interface Frame {
  /** The sort key (base64) of the first name the frame's range covers: up to the next frame's. */
  from: string;
  /** SHA-1 of the names in the range, each with the first name of its hard-link group. */
  names: string;
  /** Where the frame is in the archive, compressed. */
  offset: number;
  bytes: number;
  /** What it holds of the tar stream. */
  raw: number;
}

export interface FrameIndex {
  version: 1;
  compression: Compression;
  frames: Frame[];
  /** The frame of tar's end blocks. */
  end: { offset: number; bytes: number };
}

/** What a build over the cached tree of a package with a frame index gives the packer. */
export interface Reuse {
  index: FrameIndex;
  /** The package's archive, read once in order (storage checks its hash at the end). */
  archive: () => Promise<Readable>;
  /** The sort keys of every name the build made or changed (its upper layer's, whiteouts too). */
  changed: Buffer[];
}

export interface PackOptions {
  compression: Compression;
  level: number;
  signal?: AbortSignal;
  /** The build's cgroups: tar, find and the compressors run in them. */
  cgroupProcs?: readonly string[];
  reuse?: Reuse;
  /** Other frame sizes than WHOLE_FRAME_BYTES and FRAME_BYTES (tests: many frames of a small tree). */
  frameBytes?: FrameSizes;
}

export interface Packed {
  index: FrameIndex;
  /** How many frames (and of how many) came from the package before. */
  reused: number;
}

/** A run of names in archive order, and the frame before that holds them when it can be copied. */
interface Piece {
  from: Buffer;
  entries: TreeEntry[];
  copy: Frame | null;
}

const EMPTY = Buffer.alloc(0);
const MAGIC: Record<Compression, Buffer> = { zstd: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), gzip: Buffer.from([0x1f, 0x8b]) };

/**
 * Archives `root`; returns the compressed stream and a promise of its frame
 * index once every program has ended well. A failure (or `signal`) ends the
 * programs and errors the stream.
 */
export function packTree(root: string, options: PackOptions): { stream: Readable; done: Promise<Packed> } {
  // Room for a few frames: the storage's writes and the reads of the archive before overlap.
  const stream = new PassThrough({ highWaterMark: 8 * 2 ** 20 });
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  // A consumer that gives up (a full disk under the storage) ends the programs too.
  stream.on('close', () => stop.abort(new Error('the archive stream was closed')));
  // A failure reaches the consumer through the stream it destroys (and through `done`); one that comes before
  // the consumer reads (a tree refused at its listing, while storage still opens its file) must not end the process.
  stream.on('error', () => undefined);
  const done = pack(root, { ...options, signal }, stream).then(
    (packed) => {
      stream.end();
      return packed;
    },
    (error: unknown) => {
      stop.abort(error);
      stream.destroy(error as Error);
      throw error;
    },
  );
  done.catch(() => undefined);
  return { stream, done };
}

async function pack(root: string, options: PackOptions & { signal: AbortSignal }, out: PassThrough): Promise<Packed> {
  const { signal, reuse } = options;
  const procs = options.cgroupProcs ?? [];
  // Made beside the listing: a compressor start is no longer on the way at the end.
  const ending = endFrame(options.compression, options.level, signal, procs);
  ending.catch(() => undefined);
  const entries = await listTree(root, signal, procs);
  await refuseWhiteouts(root, entries);
  const sizes = options.frameBytes ?? { whole: WHOLE_FRAME_BYTES, made: FRAME_BYTES };
  const heads = linkHeads(entries);
  const pieces = plan(entries, heads, reuse, sizes);
  const made = pieces.filter((piece) => piece.copy === null).flatMap((piece) => piece.entries.map((entry) => entry.name));
  // Nothing copied: tar walks the tree itself (its own order is the archive's), which also takes what lies
  // deeper than PATH_MAX; a list names each file whole, so a reuse with such a name packs the whole tree.
  const whole = made.length === entries.length;
  if (!whole && made.some((name) => name.length >= LONGEST_NAME)) throw new Error('a name is too long to be given to tar in a list');

  let written = 0;
  const emit = async (bytes: Buffer): Promise<void> => {
    if (bytes.length === 0) return;
    signal.throwIfAborted();
    written += bytes.length;
    await write(out, bytes, signal);
  };
  const compressors = new Compressors(options, emit, () => written);
  const tar = made.length > 0 ? startTar(root, whole ? null : made, signal, procs) : null;
  const members = tar ? new ByteReader(tar.stdout as Readable) : null;
  const archive = reuse && pieces.some((piece) => piece.copy) ? await reuse.archive() : null;
  const before = archive ? new ByteReader(archive) : null;
  try {
    const frames: Frame[] = [];
    let raw = 0;
    for (const piece of pieces) {
      if (piece.copy) {
        await compressors.flush();
        const { offset, bytes } = piece.copy;
        const reader = before as ByteReader;
        if (offset < reader.position) throw new Error('the frame index of the package before is out of order');
        await reader.pass(offset - reader.position, () => undefined);
        frames.push({ ...piece.copy, offset: written });
        // An index that does not fit its archive (or a wrong one) shows at once: a frame starts with its magic.
        const head = await reader.take(MAGIC[options.compression].length);
        if (!head.equals(MAGIC[options.compression])) throw new Error('the frame index of the package before does not fit its archive');
        await emit(head);
        await reader.pass(bytes - head.length, emit);
        raw += piece.copy.raw;
        continue;
      }
      const frame: Frame = { from: piece.from.toString('base64'), names: namesHash(piece.entries, heads), offset: 0, bytes: 0, raw: 0 };
      frames.push(frame);
      const planned = piece.entries.reduce((sum, entry) => sum + entry.bytes, 0);
      const input = await compressors.open(frame, planned > 2 * sizes.made);
      for (const entry of piece.entries) {
        const name = await readMember(members as ByteReader, input.write);
        if (!name.equals(entry.name)) throw new Error(`tar wrote ${JSON.stringify(name.toString())} where ${JSON.stringify(entry.name.toString())} was due`);
      }
      await input.close();
      raw += frame.raw;
    }
    // Read to the end: the package before is checked against its hash there, before this one is whole.
    await before?.drain();
    if (before && reuse && before.position !== reuse.index.end.offset + reuse.index.end.bytes) {
      throw new Error('the package before is not as long as its frame index says');
    }
    await members?.drain();
    if (tar) succeeded('tar', await tar);
    await compressors.flush();
    const end = { offset: written, bytes: 0 };
    const last = await ending;
    end.bytes = last.length;
    await emit(last);
    return { index: { version: 1, compression: options.compression, frames, end }, reused: pieces.filter((piece) => piece.copy).length };
  } finally {
    compressors.abandon();
    archive?.destroy();
    // On a failure: tar may be blocked writing to a pipe nobody reads, and the package before half read.
    if (signal.aborted || tar?.exitCode === null) tar?.kill();
  }
}

/** A tree that holds an overlayfs whiteout (a character device 0/0): no package may hold one. */
export class WhiteoutInTree extends Error {
  constructor(readonly entry: Buffer) {
    super(`the build left ${JSON.stringify(entry.toString().slice(1) || '/')}, a character device 0/0, which overlayfs takes for a deleted file; a package cannot hold one`);
    this.name = 'WhiteoutInTree';
  }
}

/**
 * Refuses a tree with a whiteout in it. Overlayfs never shows one in a merged
 * tree, but on a plain root a build can make one (no capability is needed
 * for 0/0), and in a package it would hide the name from every build that
 * stands on its unpacked tree.
 */
async function refuseWhiteouts(root: string, entries: readonly TreeEntry[]): Promise<void> {
  for (const entry of entries) {
    if (entry.type !== 'c') continue;
    const info = await lstat(Buffer.concat([Buffer.from(root), entry.name.subarray(1)]));
    if (info.isCharacterDevice() && info.rdev === 0) throw new WhiteoutInTree(entry.name);
  }
}

/**
 * The pieces of the new archive, in order. Without frames to reuse, the whole
 * tree in pieces of WHOLE_FRAME_BYTES; with them, each range of the frames before
 * either copied whole or made again in pieces.
 */
function plan(entries: TreeEntry[], heads: Map<string, Buffer>, reuse: Reuse | undefined, sizes: FrameSizes): Piece[] {
  if (!reuse) return split(EMPTY, entries, sizes.whole, sizes.made);
  const { frames } = reuse.index;
  const bounds = frames.map((frame, at) => (at === 0 ? EMPTY : Buffer.from(frame.from, 'base64')));
  const rangeOf = (key: Buffer): number => {
    let low = 0;
    let high = bounds.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (Buffer.compare(bounds[middle] as Buffer, key) <= 0) low = middle;
      else high = middle - 1;
    }
    return low;
  };
  const ranges = frames.map((frame) => ({ frame, entries: [] as TreeEntry[], dirty: false }));
  for (const entry of entries) ranges[rangeOf(entry.key)]?.entries.push(entry);
  for (const key of reuse.changed) (ranges[rangeOf(key)] as (typeof ranges)[number]).dirty = true;
  for (const range of ranges) if (!range.dirty && namesHash(range.entries, heads) !== range.frame.names) range.dirty = true;
  // A file changed through one of its names (the upper layer holds only that one) is changed under all of them:
  // each later name's member carries the file's mode, owner and time, so every range holding a name of it is made again.
  const changedNames = new Set(reuse.changed.map((key) => key.toString('latin1')));
  const touched = new Set(entries.filter((entry) => entry.inode && changedNames.has(entry.key.toString('latin1'))).map((entry) => entry.inode));
  for (const entry of entries) if (entry.inode && touched.has(entry.inode)) (ranges[rangeOf(entry.key)] as (typeof ranges)[number]).dirty = true;
  // A range made again makes again the range of each of its files' first names (an earlier one, or itself).
  const headRange = new Map<string, number>();
  for (const [inode, head] of heads) headRange.set(inode, rangeOf(sortKey(head)));
  for (let at = ranges.length - 1; at >= 0; at--) {
    const range = ranges[at] as (typeof ranges)[number];
    if (!range.dirty) continue;
    for (const entry of range.entries) if (entry.inode) (ranges[headRange.get(entry.inode) as number] as (typeof ranges)[number]).dirty = true;
  }
  // A range mostly made or changed by the build (an interpreter installed over the image) is cut coarsely like
  // a whole tree; one with a few changes finely, so that the next build copies the rest of it.
  const pieces = ranges.flatMap((range, at): Piece[] => {
    if (!range.dirty) return [{ from: bounds[at] as Buffer, entries: range.entries, copy: range.frame }];
    const total = range.entries.reduce((sum, entry) => sum + entry.bytes, 0);
    const changed = range.entries.reduce((sum, entry) => sum + (changedNames.has(entry.key.toString('latin1')) ? entry.bytes : 0), 0);
    return split(bounds[at] as Buffer, range.entries, changed * 2 > total ? sizes.whole : sizes.made, sizes.made);
  });
  // Copying costs a read of the whole archive before (its hash is checked at its end): worth it only for
  // most of the tree. Less (a fresh build over the image: the interpreter rewrote nearly every range), and the
  // tree is packed whole, tar walking it itself with every core compressing.
  const copied = pieces.reduce((sum, piece) => sum + (piece.copy?.raw ?? 0), 0);
  const made = pieces.reduce((sum, piece) => sum + (piece.copy ? 0 : piece.entries.reduce((bytes, entry) => bytes + entry.bytes, 0)), 0);
  if (copied < made) return split(EMPTY, entries, sizes.whole, sizes.made);
  const [first] = pieces;
  // The first frame covers everything before the second, whatever its first name.
  if (first) first.from = EMPTY;
  return pieces;
}

/**
 * `entries` (a range from `from`) in pieces of about `target` bytes, cut
 * between members; with a small target, a large member gets a piece of its
 * own (held pieces stay small).
 */
function split(from: Buffer, entries: TreeEntry[], target: number, made: number): Piece[] {
  const pieces: Piece[] = [];
  let current: Piece | null = null;
  let size = 0;
  for (const entry of entries) {
    if (!current || size >= target || (target <= made && size > 0 && size + entry.bytes > 2 * made)) {
      current = { from: pieces.length === 0 ? from : entry.key, entries: [], copy: null };
      pieces.push(current);
      size = 0;
    }
    current.entries.push(entry);
    size += entry.bytes;
  }
  return pieces;
}

/** The first name of each hard-link group, by `dev:inode`. */
function linkHeads(entries: TreeEntry[]): Map<string, Buffer> {
  const heads = new Map<string, Buffer>();
  for (const entry of entries) if (entry.inode && !heads.has(entry.inode)) heads.set(entry.inode, entry.name);
  return heads;
}

const NUL = Buffer.from([0]);

/** The hash of a range's names, each with its hard-link group's first name (tar links it to that one). */
function namesHash(range: TreeEntry[], heads: Map<string, Buffer>): string {
  const hash = createHash('sha1');
  for (const entry of range) {
    hash.update(entry.name);
    hash.update(NUL);
    if (entry.inode) hash.update(heads.get(entry.inode) as Buffer);
    hash.update(NUL);
  }
  return hash.digest('hex');
}

/**
 * tar from `root` of `names` (in that order, no recursion; -C comes first: it
 * applies to the names after it), or of the whole tree in `--sort=name`
 * order, writing 64 KiB at a time (its end padding, which that changes, is
 * not used: the last frame has its own). tar is PID 1 of a PID namespace of
 * its own: it names a sparse file's member after its PID
 * (`GNUSparseFile.%p`), which must not differ from pack to pack.
 */
function startTar(root: string, names: Buffer[] | null, signal: AbortSignal, procs: readonly string[]): ResultPromise {
  const what = names === null ? ['--sort=name', '--one-file-system', '.'] : ['--no-recursion', '--null', '--verbatim-files-from', '--files-from=-'];
  const tar = ['tar', ...TAR_CREATE, '--blocking-factor=128', '--directory', root, ...what];
  const [file, args] = joinedCommand(procs, 'unshare', ['--pid', '--fork', '--kill-child', '--', ...tar]);
  const options = { buffer: { stdout: false, stderr: true }, reject: false, cancelSignal: signal } as const;
  if (names === null) return execa(file, args, { ...options, stdin: 'ignore' });
  return execa(file, args, { ...options, input: Buffer.concat(names.flatMap((name) => [name, NUL])) });
}

/** Writes `bytes` to `into`, waiting while its buffer is full; fails when it closes or `signal` stops. */
async function write(into: Writable, bytes: Buffer, signal: AbortSignal): Promise<void> {
  if (into.write(bytes)) return;
  await new Promise<void>((resolve, reject) => {
    const done = () => {
      into.off('drain', done);
      into.off('close', done);
      signal.removeEventListener('abort', done);
      if (signal.aborted) reject(signal.reason);
      else if (into.destroyed) reject(new Error('the stream was closed'));
      else resolve();
    };
    into.on('drain', done);
    into.on('close', done);
    signal.addEventListener('abort', done);
  });
}

interface Input {
  write: (bytes: Buffer) => Promise<void>;
  close: () => Promise<void>;
}

/**
 * The compressors of the pieces made again: one program per frame, up to one
 * per core at a time, their frames emitted in order. A piece is held in
 * memory while its program runs beside others; a large one streams through
 * its program alone, its frame emitted as it comes.
 */
class Compressors {
  private readonly queue: { frame: Frame; output: Promise<Buffer> }[] = [];
  private readonly width = Math.max(1, Math.min(4, availableParallelism()));
  private readonly running: ResultPromise[] = [];

  constructor(
    private readonly options: PackOptions & { signal: AbortSignal },
    private readonly emit: (bytes: Buffer) => Promise<void>,
    /** Where the next emitted byte goes in the archive. */
    private readonly position: () => number,
  ) {}

  /** The input of `frame`'s compressor; closing it queues (or, streaming, emits) the frame. */
  async open(frame: Frame, streaming: boolean): Promise<Input> {
    if (streaming) {
      await this.flush();
      const child = this.start(false);
      const stdin = child.stdin as Writable;
      frame.offset = this.position();
      const copying = (async () => {
        for await (const piece of child.stdout as Readable) {
          frame.bytes += (piece as Buffer).length;
          await this.emit(piece as Buffer);
        }
      })();
      copying.catch(() => undefined);
      return {
        write: async (bytes) => {
          frame.raw += bytes.length;
          await write(stdin, bytes, this.options.signal);
        },
        close: async () => {
          stdin.end();
          await copying;
          succeeded('the compressor', await child);
        },
      };
    }
    const held: Buffer[] = [];
    return {
      // The reader's pieces are its own allocations, never reused: held as they are.
      write: async (bytes) => {
        held.push(bytes);
        frame.raw += bytes.length;
      },
      close: async () => {
        while (this.queue.length >= this.width) await this.emitFirst();
        const child = this.start(true);
        const stdin = child.stdin as Writable;
        for (const bytes of held) stdin.write(bytes);
        stdin.end();
        const output = (async () => Buffer.from(succeeded('the compressor', await child).stdout as Uint8Array))();
        output.catch(() => undefined);
        this.queue.push({ frame, output });
      },
    };
  }

  /** Emits every queued frame. */
  async flush(): Promise<void> {
    while (this.queue.length > 0) await this.emitFirst();
  }

  /** Stops whatever still runs (after a failure). */
  abandon(): void {
    for (const child of this.running) if (child.exitCode === null) child.kill();
  }

  private async emitFirst(): Promise<void> {
    const next = this.queue.shift();
    if (!next) return;
    const bytes = await next.output;
    next.frame.offset = this.position();
    next.frame.bytes = bytes.length;
    await this.emit(bytes);
  }

  private start(held: boolean): ResultPromise {
    const { compression, level, signal } = this.options;
    const [file, args] = joinedCommand(this.options.cgroupProcs ?? [], ...compressor(compression, level, !held));
    const child = execa(file, args, {
      encoding: 'buffer',
      // A frame is bytes: one that ends in 0x0a must keep it.
      stripFinalNewline: false,
      buffer: { stdout: held, stderr: true },
      reject: false,
      stdin: 'pipe',
      cancelSignal: signal,
      maxBuffer: { stdout: 2 ** 31, stderr: 2 ** 16 },
    });
    // A compressor that failed says so by its exit; its input's EPIPE says nothing more.
    child.stdin?.on('error', () => undefined);
    this.running.push(child);
    return child;
  }
}

const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/** A frame index as recorded (JSON), or null when it is not one this packer wrote: a package without frames to reuse. */
export function readFrameIndex(text: string | null): FrameIndex | null {
  if (text === null) return null;
  let index: FrameIndex;
  try {
    index = JSON.parse(text) as FrameIndex;
  } catch {
    return null;
  }
  if (index?.version !== 1 || (index.compression !== 'zstd' && index.compression !== 'gzip') || !Array.isArray(index.frames) || index.frames.length === 0) return null;
  let next = 0;
  for (const frame of index.frames) {
    const good = typeof frame?.from === 'string' && typeof frame.names === 'string' && isCount(frame.offset) && isCount(frame.bytes) && isCount(frame.raw);
    if (!good || frame.offset < next) return null;
    next = frame.offset + frame.bytes;
  }
  return isCount(index.end?.offset) && isCount(index.end.bytes) && index.end.offset >= next ? index : null;
}

/** The compressor of one frame: zstd on one thread or all, or gzip. */
function compressor(compression: Compression, level: number, allThreads: boolean): [string, string[]] {
  return compression === 'zstd' ? ['zstd', ['-q', '-c', allThreads ? '-T0' : '-T1', `-${Math.min(level, 19)}`]] : ['gzip', ['-c', `-${Math.min(level, 9)}`]];
}

const endFrames = new Map<string, Buffer>();

/** The last frame: tar's end blocks, compressed once per compression and level in this process. */
async function endFrame(compression: Compression, level: number, signal: AbortSignal, procs: readonly string[]): Promise<Buffer> {
  const key = `${compression}-${level}`;
  const known = endFrames.get(key);
  if (known) return known;
  const [file, args] = joinedCommand(procs, ...compressor(compression, level, false));
  const result = await execa(file, args, { input: Buffer.alloc(END_BLOCKS), encoding: 'buffer', stripFinalNewline: false, reject: false, cancelSignal: signal });
  const bytes = Buffer.from(succeeded('the compressor', result).stdout);
  endFrames.set(key, bytes);
  return bytes;
}
