/**
 * Splits a byte stream into lines with a bounded memory: a line longer than
 * `maxBytes` is cut there, marked, and the rest of it is skipped up to its
 * newline. A command that writes gigabytes without a newline costs
 * `maxBytes` of memory, not gigabytes.
 */
export const MAX_LINE_BYTES = 16 * 1024;

/** What a cut line ends with, here and in the build log. */
export const cutNote = (bytesLeftOut: number): string => ` … [line cut: ${bytesLeftOut} more bytes]`;

/** The longest start of bytes[0..end) that holds whole UTF-8 characters: a cut never splits one. */
export function wholeCharacters(bytes: Uint8Array, end: number): number {
  let start = end;
  while (start > 0 && end - start < 3 && ((bytes[start - 1] as number) & 0xc0) === 0x80) start--;
  if (start === 0) return end;
  const lead = bytes[start - 1] as number;
  const length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return start - 1 + length <= end ? end : start - 1;
}

export class LineSplitter {
  private readonly parts: Buffer[] = [];
  private held = 0;
  /** Bytes of the current line skipped after it was cut; -1 while it is not cut. */
  private skipped = -1;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxBytes = MAX_LINE_BYTES,
  ) {}

  push(chunk: Uint8Array): void {
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (data.length > 0) {
      const newline = data.indexOf(10);
      if (newline !== -1 && this.held === 0 && this.skipped < 0 && newline <= this.maxBytes) {
        // The common case, a whole line inside the chunk: no copy.
        const end = newline > 0 && data[newline - 1] === 13 ? newline - 1 : newline;
        this.onLine(data.toString('utf8', 0, end));
        data = data.subarray(newline + 1);
        continue;
      }
      const piece = newline === -1 ? data : data.subarray(0, newline);
      this.take(piece);
      if (newline === -1) return;
      this.endLine();
      data = data.subarray(newline + 1);
    }
  }

  /** The last line when the output does not end with a newline. */
  flush(): void {
    if (this.held > 0 || this.skipped >= 0) this.endLine();
  }

  private take(piece: Buffer): void {
    if (this.skipped >= 0) {
      this.skipped += piece.length;
      return;
    }
    const room = this.maxBytes - this.held;
    if (piece.length <= room) {
      // Copied: the chunk's buffer may be reused by the stream.
      this.parts.push(Buffer.from(piece));
      this.held += piece.length;
      return;
    }
    this.parts.push(Buffer.from(piece.subarray(0, room)));
    this.held += room;
    this.skipped = piece.length - room;
  }

  private endLine(): void {
    const bytes = Buffer.concat(this.parts, this.held);
    const cut = this.skipped >= 0;
    const end = cut ? wholeCharacters(bytes, this.held) : this.held;
    let line = bytes.toString('utf8', 0, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (cut) line += cutNote(this.skipped + this.held - end);
    this.parts.length = 0;
    this.held = 0;
    this.skipped = -1;
    this.onLine(line);
  }
}
