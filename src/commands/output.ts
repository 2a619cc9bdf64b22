/**
 * Long outputs of commands go out in chunks, each after the caller has taken
 * most of the one before (Io.drain): a caller that reads slowly, or not at
 * all, holds the server to a few chunks, however long the output.
 */
import type { Io } from './command.ts';

const CHUNK_CHARS = 64 * 1024;

/** Writes `text` in chunks that end at a line's end where they can, waiting for the caller between them. */
export async function send(io: Io, text: string): Promise<void> {
  for (let at = 0; at < text.length; ) {
    let end = Math.min(at + CHUNK_CHARS, text.length);
    if (end < text.length) {
      const newline = text.lastIndexOf('\n', end - 1);
      if (newline >= at) end = newline + 1;
      else if (/[\uD800-\uDBFF]/.test(text.charAt(end - 1))) end -= 1; // a surrogate pair stays whole
    }
    io.out(text.slice(at, end));
    await io.drain();
    at = end;
  }
}

/** `value` as indented JSON and a newline, sent in chunks. */
export const printJson = (io: Io, value: unknown): Promise<void> => send(io, `${JSON.stringify(value, null, 2)}\n`);
