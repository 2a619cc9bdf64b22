/**
 * The build log: what the pusher sees, line by line, and what is stored.
 * Steps start with "-----> ", command output is indented by seven spaces,
 * a failure ends with one "!     " line that says user or system error.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import type { BuildError } from './errors.ts';

export const STEP = '-----> ';
export const INDENT = '       ';
export const FAIL = '!     ';

/**
 * Keeps a build's output bounded by `maxBytes` (builder.logsize) however much
 * the commands write. Until half the budget is used, every line goes live to
 * the sink (the pusher, `log` followers), the log file and memory. After that,
 * command output goes to a ring of the latest lines only; step and failure
 * lines still go live, each preceded by the ring's lines (with a note of how
 * many were left out), so the pusher always sees what led to a step or a
 * failure. Once the budget is spent, output is only counted.
 */
export class BuildLog {
  private readonly lines: string[] = [];
  private readonly file: WriteStream | null;
  private written = 0;
  /** Held-back output: ring[ringStart..] (a queue that drops from the front cheaply). */
  private ring: string[] = [];
  private ringStart = 0;
  private ringBytes = 0;
  private left = { lines: 0, bytes: 0 };

  constructor(
    private readonly sink: (line: string) => void,
    filePath?: string,
    private readonly maxBytes = 8 * 1024 * 1024,
  ) {
    if (filePath) mkdirSync(dirname(filePath), { recursive: true });
    this.file = filePath ? createWriteStream(filePath, { flags: 'a' }) : null;
    // A full or unwritable disk must not crash the server: the log stays in memory and in state.
    this.file?.on('error', () => undefined);
  }

  private emit(line: string): void {
    this.lines.push(line);
    this.written += line.length + 1;
    this.file?.write(`${line}\n`);
    this.sink(line);
  }

  /** A line that must be seen (a step, a failure): first whatever output was held back. */
  private emitAlways(line: string): void {
    this.release();
    this.emit(line);
  }

  private release(): void {
    if (this.left.lines > 0) {
      this.emit(`${INDENT}[... ${this.left.lines} lines (${formatBytes(this.left.bytes)}) of output left out: builder.logsize is ${formatBytes(this.maxBytes)} ...]`);
      this.left = { lines: 0, bytes: 0 };
    }
    for (let i = this.ringStart; i < this.ring.length; i++) this.emit(this.ring[i] as string);
    this.ring = [];
    this.ringStart = 0;
    this.ringBytes = 0;
  }

  private emitOutput(line: string): void {
    if (this.written + line.length < this.maxBytes / 2) {
      this.emit(line);
      return;
    }
    // Past the live half: keep the latest lines, up to a quarter of the budget
    // or what is left of it (an eighth stays free for step and failure lines).
    const room = Math.min(this.maxBytes / 4, this.maxBytes - this.written - this.maxBytes / 8);
    this.ring.push(line);
    this.ringBytes += line.length + 1;
    while (this.ringBytes > room && this.ringStart < this.ring.length) {
      const dropped = this.ring[this.ringStart++] as string;
      this.ringBytes -= dropped.length + 1;
      this.left.lines++;
      this.left.bytes += dropped.length + 1;
    }
    if (this.ringStart > 1024 && this.ringStart * 2 > this.ring.length) {
      this.ring = this.ring.slice(this.ringStart);
      this.ringStart = 0;
    }
  }

  step(text: string): void {
    this.emitAlways(`${STEP}${text}`);
  }

  /** Output of a command, or detail under a step. */
  output(text: string): void {
    for (const line of text.split('\n')) this.emitOutput(`${INDENT}${line}`);
  }

  failure(error: BuildError): void {
    if (error.detail) this.output(error.detail);
    this.emitAlways(failureLine(error));
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }

  async close(): Promise<void> {
    this.release();
    const file = this.file;
    if (file) await new Promise<void>((done) => file.end(done));
  }
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
