/**
 * Refusals, once for every front end: a CoreError is a refused or impossible
 * request; `refusalOf` names every kind of refusal the core and its ports
 * raise, with the HTTP status the API answers and the one line a caller sees
 * (the SSH and local commands show the same line with exit code 1). Anything
 * else is unexpected: "system error" for the caller, the detail for the log.
 */
import { RepoError } from '../git/repos.ts';
import { BusyError } from '../state/builds.ts';
import { UserError } from '../state/users.ts';

/** A refused or impossible request, for any front end: one line, and the HTTP status the API answers with. */
export class CoreError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 403 | 404 | 409 | 429 = 409,
  ) {
    super(message);
    this.name = 'CoreError';
  }
}

/** A refusal: its HTTP status and its one line. */
export interface Refusal {
  status: number;
  message: string;
}

/**
 * The refusal `error` is, or null. A name no repo can have (RepoError) says
 * nothing about which repos exist: 404, as git over HTTP answers it.
 */
export function refusalOf(error: unknown): Refusal | null {
  if (error instanceof CoreError) return { status: error.status, message: error.message };
  if (error instanceof RepoError) return { status: 404, message: error.message };
  if (error instanceof BusyError) return { status: 409, message: error.message };
  if (error instanceof UserError) return { status: 400, message: error.message };
  return null;
}
