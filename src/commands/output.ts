/**
 * Long outputs of commands go out in chunks, each after the caller has taken
 * most of the one before (Io.drain): a caller that reads slowly, or not at
 * all, holds the server to a few chunks, however long the output.
 */
import type { Readable, Writable } from 'node:stream';
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

/**
 * Sends `data` as it is to `out` (standard output of a command: an SSH
 * channel, the process's stdout) with its flow control, and leaves `out`
 * open whatever happens: when `data` errors, what was sent stays short and
 * the command can still write its error line and exit code. Rejects with
 * `data`'s error, or when `out` (or `closes`, what `out` is part of: an SSH
 * channel of its stderr) closes first (the caller went away).
 */
export function sendBytes(data: Readable, out: Writable, closes: NodeJS.EventEmitter = out): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error: Error | null) => {
      data.off('error', failed);
      data.off('end', ended);
      data.off('close', cut);
      closes.off('close', gone);
      data.unpipe(out);
      if (error) {
        data.destroy();
        reject(error);
      } else resolve();
    };
    const failed = (error: Error) => settle(error);
    const ended = () => settle(null);
    const gone = () => settle(new Error('the caller went away before the output was sent'));
    // Destroyed without an error and without its end: what was sent is short all the same.
    const cut = () => settle(new Error('the output ended before its end'));
    data.once('error', failed);
    data.once('end', ended);
    data.once('close', cut);
    closes.once('close', gone);
    data.pipe(out, { end: false });
  });
}
