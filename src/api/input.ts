/**
 * The API's inputs checked at its edge, each refusal a 400 that names the
 * input, what was expected and what came: JSON bodies against an endpoint's
 * declared fields (no unknown fields, no wrong types), and path parts.
 */
import { ApiError } from './errors.ts';
import type { BodySpec, FieldSpec } from './route.ts';

const shown = (value: unknown): string => (value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : JSON.stringify(value));

function checkField(name: string, spec: FieldSpec, value: unknown): string | boolean {
  if (spec.type === 'boolean') {
    if (typeof value !== 'boolean') throw new ApiError(400, `${name}: expected true or false, got ${shown(value)}`);
    return value;
  }
  const expected = spec.expected ?? 'a string';
  if (typeof value !== 'string' || (spec.pattern && !spec.pattern.test(value))) throw new ApiError(400, `${name}: expected ${expected}, got ${shown(value)}`);
  return value;
}

/** `body` (undefined: none) against `spec`: the declared fields, checked; absent ones left out. */
export function checkBody(body: unknown, spec: BodySpec): Record<string, string | boolean> {
  const given = body === undefined ? {} : body;
  if (given === null || typeof given !== 'object' || Array.isArray(given)) throw new ApiError(400, `the request body: expected a JSON object, got ${shown(given)}`);
  const names = Object.keys(spec);
  const fields: Record<string, string | boolean> = {};
  for (const [name, value] of Object.entries(given)) {
    // Own fields only: "__proto__" or "constructor" are no field of any endpoint.
    const field = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (!field) {
      const known = names.length > 0 ? `expected ${names.map((n) => JSON.stringify(n)).join(', ')}` : 'this request takes none';
      throw new ApiError(400, `unknown field ${JSON.stringify(name)} in the request body: ${known}`);
    }
    fields[name] = checkField(name, field, value);
  }
  for (const [name, field] of Object.entries(spec)) if (field.required && !(name in fields)) throw new ApiError(400, `${name}: required, missing from the request body`);
  return fields;
}

/** A build number from the path. */
export function buildNumber(given: string): number {
  if (!/^[0-9]{1,15}$/.test(given)) throw new ApiError(400, `build: expected a build number, got ${JSON.stringify(given)}`);
  return Number(given);
}
