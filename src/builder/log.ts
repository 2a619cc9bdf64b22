/**
 * The build log: what the pusher sees, line by line, and what is stored.
 * Steps start with "-----> ", command output is indented by seven spaces,
 * a failure ends with one "!     " line that says user or system error.
 * Every line is made safe for a terminal (process/terminal.ts) and names no
 * server path (the folders of the server show as <workdir>, <state> ...).
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { MAX_LINE_BYTES, cutNote, wholeCharacters } from '../process/lines.ts';
import { forTerminal, lastRedraw } from '../process/terminal.ts';
import type { BuildError } from './errors.ts';

export const STEP = '-----> ';
export const INDENT = '       ';
export const FAIL = '!     ';

/** Default of builder.logsize: bytes of log kept per build. */
export const DEFAULT_LOG_BYTES = 8 * 1024 * 1024;
/**
 * The most a log may keep, whatever builder.logsize says: a stored log must
 * fit one JavaScript string and one SQLite value (1e9 bytes) with room to spare.
 */
export const MAX_LOG_BYTES = 256 * 1024 * 1024;
/** The least: below it the head and the tail would hold almost nothing. */
const MIN_LOG_BYTES = 4 * 1024;
/**
 * Longest stored line. Process output is already cut at MAX_LINE_BYTES by the
 * line splitter (src/process/lines.ts); the slack lets its cut note and our
 * indent through without a second cut. Other lines (an error's detail, a
 * command's text) are cut here.
 */
const LINE_BYTES = MAX_LINE_BYTES + 128;
/** Room kept in the head for the held-back notice and in the tail for the left-out marker. */
const NOTE_BYTES = 256;
/** Lines up to this many characters are counted and copied in JavaScript, cheaper than a call into C++. */
const SHORT = 64;

/**
 * Keeps a build's log within `maxBytes` (builder.logsize) however much its
 * commands write, in memory that the budget bounds:
 *
 * - head: the first half of the budget. Each line goes live to the sink (the
 *   pusher, `upaas build`), to the log file (`upaas log APP` follows it) and
 *   to memory, as it comes.
 * - When a line no longer fits the head, one notice line ends it ("... output
 *   held back ..."), and from then on every line, steps and the failure line
 *   too, goes to the tail: a ring buffer of the other half that keeps the
 *   latest whole lines and counts the ones it drops.
 * - At the end (`text()` for the stored log, `close()` for the file and the
 *   sink): one marker line saying how many lines and bytes were left out, then
 *   the tail.
 *
 * So followers see every line up to the cap, then the notice, then nothing
 * until the build ends, then the marker and the tail, the same text as the
 * stored log and the file (the file is always a prefix of the stored log).
 * Nothing is buffered for a slow follower beyond what the log keeps anyway:
 * the live part is at most half the budget. The stored log, the file and what
 * followers get are each at most `maxBytes` bytes of UTF-8.
 */
export class BuildLog {
  private readonly file: WriteStream | null;
  private readonly maxBytes: number;
  /** Bytes of lines the head takes (its notice comes on top, within NOTE_BYTES). */
  private readonly headRoom: number;
  private readonly tailRoom: number;
  private readonly lineRoom: number;
  /** head[0..headBytes): whole lines, each with its newline; never rewritten, so the file can be handed views of it. */
  private head = Buffer.alloc(0);
  private headBytes = 0;
  /** head bytes already handed to the file. */
  private filed = 0;
  private fileQueued = false;
  /** Set once the head is full. */
  private tail: Ring | null = null;
  /** The marker and the tail, fixed by close(). */
  private closing: Buffer | null = null;

  constructor(
    private readonly sink: (line: string) => void,
    filePath?: string,
    maxBytes = DEFAULT_LOG_BYTES,
    /** Server paths shown as their names instead (longest first): the log is the app's readers' to see. */
    private readonly hidden: readonly (readonly [path: string, name: string])[] = [],
  ) {
    this.maxBytes = Math.min(Math.max(Math.floor(maxBytes), MIN_LOG_BYTES), MAX_LOG_BYTES);
    const half = Math.floor(this.maxBytes / 2);
    this.headRoom = half - NOTE_BYTES;
    this.tailRoom = this.maxBytes - half - NOTE_BYTES;
    this.lineRoom = Math.min(LINE_BYTES, Math.floor(this.tailRoom / 4));
    if (filePath) mkdirSync(dirname(filePath), { recursive: true });
    this.file = filePath ? createWriteStream(filePath, { flags: 'a' }) : null;
    // A full or unwritable disk must not crash the server: the log stays in memory and in state.
    this.file?.on('error', () => undefined);
  }

  private add(text: string): void {
    if (this.closing) return;
    // One line, whatever an error message holds: app-made text with a line break
    // would start a line of its own, at column 0 like a step. Masked before the
    // cut to count what is kept, and after it: a cut may split a colour sequence.
    const single = this.hide(text.includes('\n') ? text.replaceAll('\n', '^J') : text);
    const line = forTerminal(cutLine(forTerminal(single), this.lineRoom));
    const bytes = encodedLength(line);
    if (this.tail) {
      this.tail.push(line, bytes);
      return;
    }
    if (this.headBytes + bytes <= this.headRoom) {
      this.live(line, bytes);
      return;
    }
    this.live(
      cutLine(
        `${INDENT}[... output held back: the log reached half of builder.logsize (${formatBytes(this.maxBytes)}); from here only its last ${formatBytes(this.tailRoom)} is kept, and shown when the build ends ...]`,
        NOTE_BYTES - 1,
      ),
    );
    this.tail = new Ring(this.tailRoom);
    this.tail.push(line, bytes);
  }

  /** `text` with the server's folders shown by name (for what is stored beside the log, like an error message). */
  hide(text: string): string {
    return hidePaths(text, this.hidden);
  }

  /** A head line: memory, file, sink. */
  private live(line: string, bytes = encodedLength(line)): void {
    const needed = this.headBytes + bytes;
    if (needed > this.head.length) {
      const grown = Buffer.allocUnsafe(Math.min(Math.max(needed, this.head.length * 2, 64 * 1024), this.headRoom + NOTE_BYTES));
      this.head.copy(grown, 0, 0, this.headBytes);
      this.head = grown;
    }
    put(this.head, line, bytes, this.headBytes);
    this.headBytes = needed;
    this.queueFile();
    this.sink(line);
  }

  /** Head lines reach the file in one write per turn of the event loop, not one per line. */
  private queueFile(): void {
    if (!this.file || this.fileQueued) return;
    this.fileQueued = true;
    setImmediate(() => this.toFile());
  }

  private toFile(): void {
    this.fileQueued = false;
    if (!this.file || this.filed === this.headBytes) return;
    this.file.write(this.head.subarray(this.filed, this.headBytes));
    this.filed = this.headBytes;
  }

  /** The marker and the tail (empty while the head is not full). */
  private ending(): Buffer {
    if (this.closing) return this.closing;
    if (!this.tail) return Buffer.alloc(0);
    const parts = this.tail.parts();
    const left = this.tail.leftOut(parts);
    const marker =
      left.lines > 0
        ? [
            Buffer.from(
              `${cutLine(`${INDENT}[... ${left.lines} lines (${formatBytes(left.bytes)}) of output left out: builder.logsize is ${formatBytes(this.maxBytes)} ...]`, NOTE_BYTES - 1)}\n`,
            ),
          ]
        : [];
    return Buffer.concat([...marker, ...parts]);
  }

  step(text: string): void {
    this.add(`${STEP}${text}`);
  }

  /** Output of a command, or detail under a step. */
  output(text: string): void {
    // Nearly always one line: no split (it would cost more than the rest of add).
    if (!text.includes('\n')) this.add(`${INDENT}${lastRedraw(text)}`);
    else for (const line of text.split('\n')) this.add(`${INDENT}${lastRedraw(line)}`);
  }

  failure(error: BuildError): void {
    if (error.detail) this.output(error.detail);
    this.add(failureLine(error));
  }

  /** The whole log as it is stored: head, then (if the head filled) marker and tail. */
  text(): string {
    return this.head.toString('utf8', 0, this.headBytes) + this.ending().toString('utf8');
  }

  /** Ends the log: the marker and the tail go to the file and the sink; later lines are ignored. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.toFile();
    const ending = this.ending();
    this.closing = ending;
    this.tail = null;
    this.file?.write(ending);
    for (let start = 0; start < ending.length; ) {
      const end = ending.indexOf(10, start);
      this.sink(ending.toString('utf8', start, end));
      start = end + 1;
    }
    const file = this.file;
    if (file) await new Promise<void>((done) => file.end(done));
  }
}

/**
 * The latest whole lines in a fixed buffer. A line that does not fit drops
 * the oldest lines (at least 1/64 of the buffer at a time, so a flood of short
 * lines does not search for a newline per line).
 */
class Ring {
  private readonly buffer: Buffer;
  private start = 0;
  private size = 0;
  /** All that came in, lines and bytes (newlines included). */
  private linesIn = 0;
  private bytesIn = 0;

  constructor(private readonly capacity: number) {
    this.buffer = Buffer.allocUnsafe(capacity);
  }

  /** `bytes`: the line's UTF-8 length plus its newline; at most a quarter of the capacity. */
  push(line: string, bytes: number): void {
    this.linesIn++;
    this.bytesIn += bytes;
    if (this.size + bytes > this.capacity) this.drop(this.size + bytes - this.capacity + (this.capacity >> 6));
    const end = (this.start + this.size) % this.capacity;
    if (end + bytes <= this.capacity) {
      put(this.buffer, line, bytes, end);
    } else {
      const whole = Buffer.from(`${line}\n`);
      const first = this.capacity - end;
      whole.copy(this.buffer, end, 0, first);
      whole.copy(this.buffer, 0, first);
    }
    this.size += bytes;
  }

  /** Drops at least `bytes` from the front, through the end of the line they end in. */
  private drop(bytes: number): void {
    if (bytes >= this.size) {
      this.start = 0;
      this.size = 0;
      return;
    }
    // The kept bytes always end with a newline, so the search stops inside them.
    let newline = this.buffer.indexOf(10, (this.start + bytes - 1) % this.capacity);
    if (newline === -1) newline = this.buffer.indexOf(10, 0);
    const dropped = ((newline - this.start + this.capacity) % this.capacity) + 1;
    this.start = (newline + 1) % this.capacity;
    this.size -= dropped;
  }

  /** The kept lines in order, as views of the buffer. */
  parts(): Buffer[] {
    if (this.start + this.size <= this.capacity) return [this.buffer.subarray(this.start, this.start + this.size)];
    return [this.buffer.subarray(this.start), this.buffer.subarray(0, this.start + this.size - this.capacity)];
  }

  leftOut(parts: Buffer[]): { lines: number; bytes: number } {
    let kept = 0;
    for (const part of parts) for (let i = 0; i < part.length; i++) if (part[i] === 10) kept++;
    return { lines: this.linesIn - kept, bytes: this.bytesIn - this.size };
  }
}

/** A line's UTF-8 length with its newline; short ASCII lines (a flood's) are counted without a call into C++. */
function encodedLength(line: string): number {
  if (line.length <= SHORT) {
    let i = 0;
    while (i < line.length && line.charCodeAt(i) < 0x80) i++;
    if (i === line.length) return line.length + 1;
  }
  return Buffer.byteLength(line) + 1;
}

/** Writes `line` and its newline (`bytes` in all, from encodedLength) at `at`. */
function put(buffer: Buffer, line: string, bytes: number, at: number): void {
  // As long as the string means all ASCII (a longer character would add bytes).
  if (bytes === line.length + 1 && line.length <= SHORT) for (let i = 0; i < line.length; i++) buffer[at + i] = line.charCodeAt(i);
  else buffer.write(line, at, 'utf8');
  buffer[at + bytes - 1] = 10;
}

/** A line of at most `room` UTF-8 bytes: a longer one is cut on a character boundary and says so. */
function cutLine(line: string, room: number): string {
  // A UTF-16 unit is at most three UTF-8 bytes: short lines need no counting.
  if (line.length * 3 <= room) return line;
  const bytes = Buffer.byteLength(line);
  if (bytes <= room) return line;
  const buffer = Buffer.from(line);
  const end = wholeCharacters(buffer, Math.max(room - 48, 0));
  return `${buffer.toString('utf8', 0, end)}${cutNote(bytes - end)}`;
}

/** The last line a pusher sees when a build fails. */
export const failureLine = (error: BuildError): string => `${FAIL}${error.line}`;

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** The folder of an app's build logs in paths.state. */
export const logFolder = (stateDir: string, app: string) => join(stateDir, 'logs', app);

/** The log file of build `id` of `app`. */
export const logFile = (stateDir: string, app: string, id: number) => join(logFolder(stateDir, app), `${id}.log`);

/** The server's folders a log line must not name, longest first, each with the name it shows instead. */
export function hiddenPaths(folders: [name: string, path: string][]): [string, string][] {
  return folders
    .filter(([, path]) => path.length > 1)
    .map(([name, path]): [string, string] => [path, `<${name}>`])
    .sort((a, b) => b[0].length - a[0].length);
}

/** The server's own folders (paths.*, the storage's), as hiddenPaths gives them. */
export function serverFolders(paths: { workdir: string; repos: string; state: string }, storageFolders: readonly string[]): [string, string][] {
  return hiddenPaths([
    ['workdir', paths.workdir],
    ['repos', paths.repos],
    ['state', paths.state],
    ...storageFolders.map((folder): [string, string] => ['storage', folder]),
  ]);
}

/** `text` with each of the `hidden` folders shown by its name. */
export function hidePaths(text: string, hidden: readonly (readonly [path: string, name: string])[]): string {
  let shown = text;
  for (const [path, name] of hidden) if (shown.includes(path)) shown = shown.replaceAll(path, name);
  return shown;
}
