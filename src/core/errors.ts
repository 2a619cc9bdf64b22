/** A refused or impossible request, for any front end: one line, and the HTTP status the API answers with. */
export class CoreError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 404 | 409 = 409,
  ) {
    super(message);
    this.name = 'CoreError';
  }
}
