/**
 * Reads that never hand over a whole bad object: the bytes pass through as
 * they come, hashed on the way, but the last chunk is held until the hash is
 * known. A mismatch errors the stream before that chunk, so a reader of a
 * corrupt object always gets a short read and an error, never every byte.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';

/**
 * Passes on what `pass` makes of each chunk (the chunk itself, a part of it,
 * or nothing), holding the newest piece back until `verdict` says the whole
 * input was good (or errors instead).
 */
export class HoldLast extends Transform {
  private held: Buffer | null = null;

  constructor(
    private readonly pass: (chunk: Buffer) => Buffer | null,
    private readonly verdict: () => Error | null,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    const piece = this.pass(chunk);
    if (piece && piece.length > 0) {
      if (this.held) this.push(this.held);
      this.held = piece;
    }
    done();
  }

  override _flush(done: (error?: Error | null) => void): void {
    const error = this.verdict();
    if (error) return done(error);
    if (this.held) this.push(this.held);
    this.held = null;
    done();
  }
}

/** A HoldLast that checks the SHA-256 of everything that passed against `expected`; `mismatch` makes the error. */
export function sha256Check(expected: string, mismatch: (actual: string) => Error): HoldLast {
  const hash = createHash('sha256');
  return new HoldLast(
    (chunk) => {
      hash.update(chunk);
      return chunk;
    },
    () => {
      const actual = hash.digest('hex');
      return actual === expected ? null : mismatch(actual);
    },
  );
}
