/**
 * Reads streams by exact byte counts, and the members of a POSIX (pax) tar
 * stream one at a time as the bytes tar wrote: a member is its pax header (if
 * any), its header and its data blocks. Only what splitting an archive at
 * member boundaries needs: the member's name (pax `path`, or the header's
 * prefix and name) and its size.
 */
import { PassThrough, type Readable } from 'node:stream';

const BLOCK = 512;

/** A piece of the stream, handed on as it came; its consumer may wait (back-pressure). */
export type Sink = (piece: Buffer) => void | Promise<void>;

/** Reads a stream by exact byte counts, handing pieces on as they came where it can. */
export class ByteReader {
  private readonly source: AsyncIterator<Buffer>;
  private pending: Buffer[] = [];
  private have = 0;
  /** Bytes read so far. */
  position = 0;

  constructor(stream: Readable) {
    // Taken at once, through a pipe that keeps its bytes (with back-pressure):
    // an async iterator attaches only at its first read, and execa lets an
    // unread stdout flow away meanwhile.
    const kept = new PassThrough({ highWaterMark: 2 ** 20 });
    stream.on('error', (error) => kept.destroy(error));
    // Its error reaches the reader at its next read (the iterator reports it).
    kept.on('error', () => undefined);
    stream.pipe(kept);
    this.source = kept[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** Exactly `bytes` bytes, as one buffer. */
  async take(bytes: number): Promise<Buffer> {
    await this.fill(bytes);
    const all = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    const taken = all.subarray(0, bytes);
    const rest = all.subarray(bytes);
    this.pending = rest.length > 0 ? [rest] : [];
    this.have = rest.length;
    this.position += bytes;
    return taken;
  }

  /** `bytes` bytes handed to `sink` in the pieces they came in. */
  async pass(bytes: number, sink: Sink): Promise<void> {
    let left = bytes;
    while (left > 0) {
      if (this.have === 0) await this.fill(1);
      const piece = this.pending[0] as Buffer;
      const part = piece.length <= left ? piece : piece.subarray(0, left);
      if (part === piece) this.pending.shift();
      else this.pending[0] = piece.subarray(left);
      this.have -= part.length;
      this.position += part.length;
      left -= part.length;
      await sink(part);
    }
  }

  /** Reads the stream to its end (a verified stream checks its hash there); returns how many bytes were left. */
  async drain(): Promise<number> {
    let left = this.have;
    this.pending = [];
    this.have = 0;
    for (;;) {
      const next = await this.source.next();
      if (next.done) break;
      left += next.value.length;
    }
    this.position += left;
    return left;
  }

  private async fill(bytes: number): Promise<void> {
    while (this.have < bytes) {
      const next = await this.source.next();
      if (next.done) throw new Error('the stream ended early');
      this.pending.push(next.value);
      this.have += next.value.length;
    }
  }
}

/**
 * Reads the next tar member from `reader`, handing all its bytes to `sink`;
 * returns its name without a trailing `/` (tar adds one to a folder's).
 */
export async function readMember(reader: ByteReader, sink: Sink): Promise<Buffer> {
  let header = await reader.take(BLOCK);
  let path: Buffer | null = null;
  for (;;) {
    if (header.every((byte) => byte === 0)) throw new Error('the tar stream ended before a member it should hold');
    checkSum(header);
    const type = String.fromCharCode(header[156] ?? 0);
    if (type !== 'x' && type !== 'g') break;
    const size = sizeOf(header);
    const records = await reader.take(padded(size));
    await sink(header);
    await sink(records);
    if (type === 'x') path = paxPath(records.subarray(0, size)) ?? path;
    header = await reader.take(BLOCK);
  }
  await sink(header);
  await reader.pass(padded(sizeOf(header)), sink);
  const name = path ?? ustarName(header);
  return name.length > 1 && name[name.length - 1] === 0x2f ? name.subarray(0, -1) : name;
}

const padded = (bytes: number): number => Math.ceil(bytes / BLOCK) * BLOCK;

/** The size field: octal digits, or base-256 when its first byte has the high bit (GNU tar, over 8 GiB). */
function sizeOf(header: Buffer): number {
  const field = header.subarray(124, 136);
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let value = 0;
    for (let at = 1; at < field.length; at++) value = value * 256 + (field[at] ?? 0);
    return value;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]*$/.test(text)) throw new Error(`a tar header has an unreadable size ${JSON.stringify(text)}`);
  return text === '' ? 0 : Number.parseInt(text, 8);
}

/** A header's checksum: the sum of its bytes, the checksum field counted as spaces. */
function checkSum(header: Buffer): void {
  let sum = 0;
  for (let at = 0; at < BLOCK; at++) sum += at >= 148 && at < 156 ? 0x20 : (header[at] ?? 0);
  const stored = Number.parseInt(header.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim(), 8);
  if (stored !== sum) throw new Error('a tar header has a wrong checksum');
}

const field = (header: Buffer, start: number, length: number): Buffer => {
  const bytes = header.subarray(start, start + length);
  const end = bytes.indexOf(0);
  return end === -1 ? bytes : bytes.subarray(0, end);
};

function ustarName(header: Buffer): Buffer {
  const name = field(header, 0, 100);
  const prefix = header.subarray(257, 263).toString('latin1') === 'ustar\0' ? field(header, 345, 155) : Buffer.alloc(0);
  return prefix.length > 0 ? Buffer.concat([prefix, Buffer.from('/'), name]) : name;
}

/**
 * The name pax records give a member (`LENGTH key=value\n`, LENGTH counting
 * the whole record): `path`, or for a sparse file `GNU.sparse.name` (its
 * header holds a made-up name with tar's process id).
 */
function paxPath(records: Buffer): Buffer | null {
  let path: Buffer | null = null;
  let sparse: Buffer | null = null;
  let at = 0;
  while (at < records.length) {
    const space = records.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number(records.subarray(at, space).toString('latin1'));
    if (!Number.isInteger(length) || length <= 0 || at + length > records.length) throw new Error('a tar member has broken pax records');
    const record = records.subarray(space + 1, at + length - 1);
    const equals = record.indexOf(0x3d);
    const key = equals === -1 ? '' : record.subarray(0, equals).toString('latin1');
    if (key === 'path') path = record.subarray(equals + 1);
    if (key === 'GNU.sparse.name') sparse = record.subarray(equals + 1);
    at += length;
  }
  return path ?? sparse;
}
