/**
 * Output to a client that may read slowly or not at all: what it has not
 * taken yet is held up to a bound; past it, writes are left out (and counted
 * in one line when it catches up), so no client can make the server hold
 * more than that. Long outputs wait with `drain` between chunks instead.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** Held for a client at most (per stream). */
export const MAX_HELD_BYTES = 4 * 1024 * 1024;
/** A longer write is held piece by piece, each checked against the bound. */
const PIECE_CHARS = 64 * 1024;
/** `drain` resolves once the client's backlog is below this. */
const LOW_WATER_BYTES = 256 * 1024;

/**
 * `text` in pieces of at most `size` characters, never splitting a surrogate
 * pair; with `atLines`, a piece ends after a line break where one is in it.
 */
export function* pieces(text: string, size: number, atLines = false): Generator<string> {
  if (text.length <= size) {
    yield text;
    return;
  }
  for (let at = 0; at < text.length; ) {
    let end = Math.min(at + size, text.length);
    if (end < text.length) {
      const newline = atLines ? text.lastIndexOf('\n', end - 1) : -1;
      if (newline >= at) end = newline + 1;
      else if (/[\uD800-\uDBFF]/.test(text.charAt(end - 1))) end -= 1;
    }
    yield text.slice(at, end);
    at = end;
  }
}

export class BoundedOutput {
  private skipped = 0;

  constructor(
    private readonly stream: Writable,
    private readonly maxHeld = MAX_HELD_BYTES,
  ) {}

  private get open(): boolean {
    return !this.stream.destroyed && !this.stream.writableEnded;
  }

  /** Writes `text`, or leaves it out while the client holds more than the bound (a long text piece by piece). */
  write(text: string): void {
    for (const piece of pieces(text, PIECE_CHARS)) this.writePiece(piece);
  }

  private writePiece(text: string): void {
    if (!this.open) return;
    if (this.stream.writableLength > this.maxHeld) {
      this.skipped += 1;
      return;
    }
    if (this.skipped > 0) {
      this.stream.write(`[... ${this.skipped} writes left out here: the client read too slowly; the stored log has them all ...]\n`);
      this.skipped = 0;
    }
    this.stream.write(text);
  }

  /** Resolves once the client's backlog is small (or the stream is gone). */
  async drain(): Promise<void> {
    while (this.open && this.stream.writableLength > LOW_WATER_BYTES) {
      // An error ends the stream too; the caller learns of it from the stream itself.
      await Promise.race([once(this.stream, 'drain'), once(this.stream, 'close')]).catch(() => undefined);
    }
  }
}
