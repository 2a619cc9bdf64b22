/**
 * Long outputs of commands go out in chunks, each after the caller has taken
 * most of the one before (Io.drain): a caller that reads slowly, or not at
 * all, holds the server to a few chunks, however long the output.
 */
import { pieces } from '../process/bounded-output.ts';
import type { Io } from './command.ts';

const CHUNK_CHARS = 64 * 1024;

/** Writes `text` in chunks that end at a line's end where they can, waiting for the caller between them. */
export async function send(io: Io, text: string): Promise<void> {
  for (const chunk of pieces(text, CHUNK_CHARS, true)) {
    io.out(chunk);
    await io.drain();
  }
}

/** `value` as indented JSON and a newline, sent in chunks. */
export const printJson = (io: Io, value: unknown): Promise<void> => send(io, `${JSON.stringify(value, null, 2)}\n`);
