/**
 * The two kinds of build failure. Every message a pusher sees says which kind:
 * a user error is caused by the app's inputs (metadata, packages, clone, app
 * actions); a system error by the platform (image, admin actions, archive, storage).
 */
export type ErrorKind = 'user' | 'system';

export class BuildError extends Error {
  readonly kind: ErrorKind;
  /** Extra detail for the build log, never shown as the pusher's one line. */
  readonly detail: string | undefined;
  private readonly headline: string | undefined;

  /** `headline` replaces the "user error"/"system error" that starts the pusher's line (the kind is then named at its end). */
  constructor(kind: ErrorKind, message: string, options: { cause?: unknown; detail?: string; headline?: string } = {}) {
    super(message, { cause: options.cause });
    this.name = kind === 'user' ? 'UserError' : 'SystemError';
    this.kind = kind;
    this.detail = options.detail;
    this.headline = options.headline;
  }

  /** The one line the pusher sees. */
  get line(): string {
    return this.headline ? `${this.headline}: ${this.message} (${this.kind} error)` : `${this.kind} error: ${this.message}`;
  }
}

export const userError = (message: string, options?: { cause?: unknown; detail?: string }) =>
  new BuildError('user', message, options);

export const systemError = (message: string, options?: { cause?: unknown; detail?: string }) =>
  new BuildError('system', message, options);

/** A build stopped by its signal: the server stops past builder.grace, or the caller went away. */
export const cancelledError = () => systemError('the build was cancelled (the server is stopping or the caller went away)');

/** Any thrown value as a BuildError; unexpected exceptions are the platform's fault. */
export function asBuildError(error: unknown): BuildError {
  if (error instanceof BuildError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return systemError(`unexpected failure: ${message}`, { cause: error });
}

/** Exit codes of `upaas build`: 0 success, 1 user error, 2 system error. */
export const exitCodeFor = (kind: ErrorKind): number => (kind === 'user' ? 1 : 2);
