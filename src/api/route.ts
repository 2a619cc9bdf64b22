/**
 * The contract of one API endpoint: the access it needs on the route's app
 * (checked by the API before it runs, with core/access.ts openRepo, as the
 * SSH dispatcher checks a command's), the JSON body fields it takes, and
 * what it does. An endpoint gets its checked repo and its checked body, and
 * answers with a status and a JSON value, or answers by itself (streams).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Repo } from '../core/access.ts';
import type { Services } from '../core/services.ts';
import type { User } from '../state/users.ts';

/** Any user; or read or write on the app the route names. */
export type Access = 'user' | 'read' | 'write';

/** One field of a JSON body: its type, whether it must be there, and for strings the pattern its value must match. */
export type FieldSpec = { type: 'boolean'; required?: boolean } | { type: 'string'; required?: boolean; pattern?: RegExp; expected?: string };

export type BodySpec = Record<string, FieldSpec>;

type FieldValue<F extends FieldSpec> = F extends { type: 'boolean' } ? boolean : string;

/** A checked body: each declared field with its type, absent unless required. */
export type Fields<B extends BodySpec> = {
  [K in keyof B]: FieldValue<B[K]> | (B[K] extends { required: true } ? never : undefined);
};

export interface Call<A extends Access, B extends BodySpec> {
  services: Services;
  user: User;
  /** The app the access was checked on: the one name to work with. */
  repo: A extends 'user' ? null : Repo;
  /** The route's other path parts by name (e.g. `build`, `package`), percent-decoded, not yet checked. */
  params: Record<string, string>;
  body: Fields<B>;
  request: IncomingMessage;
  response: ServerResponse;
  /** Aborted when the server stops and builder.grace is over. */
  stopping: AbortSignal;
}

/** A JSON answer, or 'answered' when the endpoint has answered by itself. */
export type Reply = { status: number; body: unknown; headers?: Record<string, string> } | 'answered';

/** An endpoint as the API holds it. */
export interface Endpoint {
  access: Access;
  /** The JSON body it takes (POST); absent: it reads none. */
  body?: BodySpec;
  run(call: Call<Access, BodySpec>): Promise<Reply>;
}

/** Declares an endpoint, typed by its access and body. */
export function endpoint<const A extends Access, const B extends BodySpec = Record<never, FieldSpec>>(spec: {
  access: A;
  body?: B;
  run(call: Call<A, B>): Promise<Reply>;
}): Endpoint {
  // The API checked the access and the body against this very declaration.
  return { access: spec.access, body: spec.body, run: spec.run as unknown as Endpoint['run'] };
}
