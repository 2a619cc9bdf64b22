/**
 * Request bodies over HTTP, for git and the API alike: a body must keep
 * coming (at least BODY_MIN_BYTES in each server.http.body_timeout window),
 * so that a client cannot hold a request, and what it holds, open by
 * trickling its body.
 */
import type { IncomingMessage } from 'node:http';
import { type Readable, Transform } from 'node:stream';

/** A request body must bring at least this much in each server.http.body_timeout window. */
export const BODY_MIN_BYTES = 1024;

/**
 * The request body through a meter: `stalled` is called when it brings less
 * than BODY_MIN_BYTES in `seconds`, until it ends. `stop` ends the watch.
 */
export function watchBody(request: IncomingMessage, seconds: number, stalled: () => void): { body: Readable; stop: () => void } {
  let bytes = 0;
  const body = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  request.pipe(body);
  const timer = setInterval(() => {
    if (request.complete) return stop();
    if (bytes < BODY_MIN_BYTES) {
      stop();
      stalled();
    }
    bytes = 0;
  }, seconds * 1000);
  const stop = () => clearInterval(timer);
  request.once('end', stop);
  request.once('close', stop);
  return { body, stop };
}
