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

export class BuildLog {
  private readonly lines: string[] = [];
  private readonly file: WriteStream | null;

  constructor(
    private readonly sink: (line: string) => void,
    filePath?: string,
  ) {
    if (filePath) mkdirSync(dirname(filePath), { recursive: true });
    this.file = filePath ? createWriteStream(filePath, { flags: 'a' }) : null;
    // A full or unwritable disk must not crash the server: the log stays in memory and in state.
    this.file?.on('error', () => undefined);
  }

  private emit(line: string): void {
    this.lines.push(line);
    this.file?.write(`${line}\n`);
    this.sink(line);
  }

  step(text: string): void {
    this.emit(`${STEP}${text}`);
  }

  /** Output of a command, or detail under a step. */
  output(text: string): void {
    for (const line of text.split('\n')) this.emit(`${INDENT}${line}`);
  }

  failure(error: BuildError): void {
    if (error.detail) this.output(error.detail);
    this.emit(failureLine(error));
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }

  async close(): Promise<void> {
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
