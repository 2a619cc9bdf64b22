/**
 * What the API answers for an error, decided here and nowhere else: the
 * refusals of the edge (ApiError) and of the core (core/errors.ts refusalOf,
 * which the SSH dispatcher uses for its one line and exit code 1) each have
 * their status and one line for the caller; a corrupt stored archive is the platform's problem, told as
 * one line with the detail for the server log; anything else is unexpected
 * (null): "system error" for the caller, the detail for the log.
 */
import { CorruptArchiveError } from '../core/download.ts';
import { refusalOf } from '../core/errors.ts';

/** A request refused at the API's edge (a bad path, body or header), with its status. */
export class ApiError extends Error {
  constructor(
    readonly status: 400 | 404 | 405 | 409 | 413 | 415 | 416 | 429,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The client is gone (or was cut off) before its request ended: nobody is left to answer, nothing to log. */
export class ClientGone extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClientGone';
  }
}

/** Whether `error` only says that the client went away. */
export const clientGone = (error: unknown): boolean =>
  error instanceof ClientGone || (error as NodeJS.ErrnoException | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE';

export interface ErrorAnswer {
  status: number;
  /** The caller's one line. */
  message: string;
  headers?: Record<string, string>;
  /** For the server log only. */
  detail?: string;
}

/** The answer to a known kind of error; null for an unexpected one. */
export function answerFor(error: unknown): ErrorAnswer | null {
  if (error instanceof ApiError) return { status: error.status, message: error.message, headers: error.headers };
  const refusal = refusalOf(error);
  // Busy (all of the user's slots in use): worth asking again soon.
  if (refusal) return refusal.status === 429 ? { ...refusal, headers: { 'Retry-After': '5' } } : refusal;
  if (error instanceof CorruptArchiveError) {
    return { status: 500, message: `system error: ${error.message}`, detail: (error.cause as Error | undefined)?.message ?? error.message };
  }
  return null;
}
