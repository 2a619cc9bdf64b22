/**
 * JSON in and out of the API: replies (the same text as the command line's
 * `--json`), errors as `{"error": "..."}`, and request bodies, which must be
 * small (MAX_BODY_BYTES, else 413) and keep coming (http/body.ts:
 * a body that stalls has its connection cut).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { serverLog } from '../process/server-log.ts';
import { BODY_MIN_BYTES, watchBody } from '../http/body.ts';
import { ApiError, ClientGone } from './errors.ts';

export const MAX_BODY_BYTES = 64 * 1024;

/** Sends `value` as indented JSON and a newline, as `--json` prints it. */
export function sendJson(response: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
    'Cache-Control': 'no-store',
    ...headers,
  });
  response.end(text);
}

/** Sends `{"error": message}`. */
export const sendError = (response: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void =>
  sendJson(response, status, { error: message }, headers);

const tooLarge = () => new ApiError(413, `the request body is larger than ${MAX_BODY_BYTES / 1024} KiB`, { Connection: 'close' });

/**
 * The request's JSON body, undefined when it has none. A body over
 * MAX_BODY_BYTES is an ApiError 413 (its connection is closed after the
 * answer); one that stalls (less than BODY_MIN_BYTES in `seconds`) has its
 * connection cut, and this rejects with nobody left to answer.
 */
export async function readJsonBody(request: IncomingMessage, seconds: number): Promise<unknown> {
  if (Number(request.headers['content-length'] ?? 0) > MAX_BODY_BYTES) throw tooLarge();
  const address = request.socket.remoteAddress ?? 'unknown';
  const watched = watchBody(request, seconds, () => {
    serverLog(`api: cut a request from ${address}: its body brought less than ${BODY_MIN_BYTES} bytes in ${seconds}s`);
    request.socket.destroy();
  });
  const cut = () => {
    if (!request.complete) watched.body.destroy(new ClientGone('the request was cut off before its body ended'));
  };
  request.once('close', cut);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of watched.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw tooLarge();
      chunks.push(chunk);
    }
  } finally {
    watched.stop();
    request.off('close', cut);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new ApiError(400, 'the request body is not UTF-8 text');
  }
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ApiError(400, `the request body is not valid JSON: ${(error as Error).message}`);
  }
}
