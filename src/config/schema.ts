/**
 * A small validating parser for YAML documents. Each schema turns an unknown
 * value into a typed one, filling defaults, and reports every problem with its
 * key path, what was expected and what was found:
 *   os.debian.packages[2]: expected a string, got 3
 * Unknown keys are errors, never silently dropped.
 */

export class ValidationError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n  ${problems.join('\n  ')}`}`);
    this.name = 'ValidationError';
  }
}

export class Context {
  readonly problems: string[] = [];
  report(path: string, message: string): void {
    this.problems.push(`${path || '(top level)'}: ${message}`);
  }
}

export interface Schema<T> {
  /** Returns the parsed value; on a problem reports it and returns a placeholder. */
  parse(value: unknown, path: string, ctx: Context): T;
  /** What the schema expects, for messages: "a string", "a list of strings". */
  readonly expected: string;
  /** Value used when the key is missing; undefined means the key is required. */
  readonly fallback?: () => T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

/** How a found value is shown in a message. */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return String(value);
}

/** Appends a key to a path, quoting keys that would be ambiguous. */
export function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  const safe = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key);
  if (!safe) return `${path}[${JSON.stringify(key)}]`;
  return path ? `${path}.${key}` : key;
}

function mismatch<T>(ctx: Context, path: string, expected: string, value: unknown, placeholder: T): T {
  ctx.report(path, `expected ${expected}, got ${describe(value)}`);
  return placeholder;
}

export function string(options: { pattern?: RegExp; patternText?: string; nonEmpty?: boolean } = {}): Schema<string> {
  const expected = options.patternText ?? (options.nonEmpty ? 'a non-empty string' : 'a string');
  return {
    expected,
    parse(value, path, ctx) {
      if (typeof value !== 'string') return mismatch(ctx, path, expected, value, '');
      if (options.nonEmpty && value.trim() === '') return mismatch(ctx, path, expected, value, '');
      if (options.pattern && !options.pattern.test(value)) return mismatch(ctx, path, expected, value, '');
      return value;
    },
  };
}

export function oneOf<const T extends string>(choices: readonly T[]): Schema<T> {
  const expected = `one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`;
  return {
    expected,
    parse(value, path, ctx) {
      if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T;
      return mismatch(ctx, path, expected, value, choices[0] as T);
    },
  };
}

export function integer(options: { min?: number; max?: number } = {}): Schema<number> {
  const bounds =
    options.min !== undefined && options.max !== undefined
      ? ` from ${options.min} to ${options.max}`
      : options.min !== undefined
        ? ` of at least ${options.min}`
        : '';
  const expected = `a whole number${bounds}`;
  return {
    expected,
    parse(value, path, ctx) {
      // Plain numbers in our YAML schema are integers; "1.5" arrives as a string.
      if (typeof value !== 'number' || !Number.isInteger(value)) return mismatch(ctx, path, expected, value, 0);
      if ((options.min !== undefined && value < options.min) || (options.max !== undefined && value > options.max)) {
        return mismatch(ctx, path, expected, value, 0);
      }
      return value;
    },
  };
}

export function boolean(): Schema<boolean> {
  const expected = 'true or false';
  return {
    expected,
    parse(value, path, ctx) {
      if (typeof value === 'boolean') return value;
      return mismatch(ctx, path, expected, value, false);
    },
  };
}

/** A scalar written as text: strings as they are, numbers and booleans as YAML wrote them. */
export function scalarText(options: { pattern?: RegExp; patternText?: string } = {}): Schema<string> {
  const expected = options.patternText ?? 'a string';
  return {
    expected,
    parse(value, path, ctx) {
      const text = typeof value === 'number' || typeof value === 'boolean' ? String(value) : value;
      if (typeof text !== 'string') return mismatch(ctx, path, expected, value, '');
      if (options.pattern && !options.pattern.test(text)) return mismatch(ctx, path, expected, value, '');
      return text;
    },
  };
}

export function list<T>(item: Schema<T>): Schema<T[]> {
  const single = /^an? ([a-z-]+)$/.exec(item.expected);
  const expected = single ? `a list of ${single[1]}s` : `a list, each ${item.expected}`;
  return {
    expected,
    parse(value, path, ctx) {
      if (!Array.isArray(value)) return mismatch(ctx, path, expected, value, []);
      return value.map((entry, index) => item.parse(entry, child(path, index), ctx));
    },
  };
}

/** A mapping whose keys are free (checked by keyPattern), all values of one schema. */
export function record<T>(
  value: Schema<T>,
  options: { keyPattern?: RegExp; keyText?: string } = {},
): Schema<Record<string, T>> {
  const expected = 'a mapping';
  return {
    expected,
    parse(input, path, ctx) {
      if (!isMapping(input)) return mismatch(ctx, path, expected, input, {});
      const out: Record<string, T> = {};
      for (const [key, entry] of Object.entries(input)) {
        if (options.keyPattern && !options.keyPattern.test(key)) {
          ctx.report(child(path, key), `invalid key: expected ${options.keyText ?? `a key matching ${options.keyPattern}`}`);
          continue;
        }
        if (key === '__proto__') {
          // An assignment would set the object's prototype and drop the entry without a word.
          ctx.report(child(path, key), 'invalid key: __proto__ is reserved');
          continue;
        }
        out[key] = value.parse(entry, child(path, key), ctx);
      }
      return out;
    },
  };
}

type Shape = Record<string, Schema<unknown>>;
type ObjectOf<S extends Shape> = { [K in keyof S]: Infer<S[K]> };

/**
 * A mapping with known keys. Missing keys take their schema's fallback or are
 * reported as required; unknown keys are reported, or handed to `rest` when given.
 */
export function object<S extends Shape>(shape: S): Schema<ObjectOf<S>>;
export function object<S extends Shape, R>(
  shape: S,
  options: { rest: { schema: Schema<R>; keyPattern: RegExp; keyText: string } },
): Schema<ObjectOf<S> & { rest: Record<string, R> }>;
export function object<S extends Shape, R>(
  shape: S,
  options: { rest?: { schema: Schema<R>; keyPattern: RegExp; keyText: string } } = {},
): Schema<ObjectOf<S> & { rest: Record<string, R> }> {
  const expected = 'a mapping';
  type Out = ObjectOf<S> & { rest: Record<string, R> };
  const build = (input: Record<string, unknown>, path: string, ctx: Context): Out => {
    const out: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(shape)) {
      const value = input[key];
      if (value === undefined || value === null) {
        if (schema.fallback) {
          out[key] = schema.fallback();
          continue;
        }
        if (value === undefined) {
          ctx.report(child(path, key), `missing: expected ${schema.expected}`);
          continue;
        }
      }
      out[key] = schema.parse(value, child(path, key), ctx);
    }
    const rest: Record<string, R> = {};
    for (const [key, value] of Object.entries(input)) {
      if (key in shape) continue;
      if (options.rest && options.rest.keyPattern.test(key)) {
        rest[key] = options.rest.schema.parse(value, child(path, key), ctx);
      } else {
        const known = Object.keys(shape).join(', ');
        const extra = options.rest ? `, or ${options.rest.keyText}` : '';
        ctx.report(child(path, key), `unknown key (known keys: ${known}${extra})`);
      }
    }
    if (options.rest) out.rest = rest;
    return out as Out;
  };
  return {
    expected,
    parse(value, path, ctx) {
      if (!isMapping(value)) return mismatch(ctx, path, expected, value, build({}, path, new Context()));
      return build(value, path, ctx);
    },
  };
}

/**
 * The keys of `shape`, each optional and without its default: an override
 * mapping where only what is given counts (absent keys are left out).
 */
export function partial<S extends Shape>(shape: S): Schema<Partial<ObjectOf<S>>> {
  const expected = 'a mapping';
  return {
    expected,
    parse(value, path, ctx) {
      if (!isMapping(value)) return mismatch(ctx, path, expected, value, {});
      const out: Record<string, unknown> = {};
      for (const [key, entry] of Object.entries(value)) {
        const schema = shape[key];
        if (!schema) {
          ctx.report(child(path, key), `unknown key (known keys: ${Object.keys(shape).join(', ')})`);
          continue;
        }
        if (entry !== undefined && entry !== null) out[key] = schema.parse(entry, child(path, key), ctx);
      }
      return out as Partial<ObjectOf<S>>;
    },
  };
}

/** The same schema with a default used when the key is missing or null. */
export function withDefault<T>(schema: Schema<T>, fallback: T | (() => T)): Schema<T> {
  return {
    expected: schema.expected,
    parse: schema.parse.bind(schema),
    fallback: typeof fallback === 'function' ? (fallback as () => T) : () => structuredClone(fallback),
  };
}

/** An object schema whose every key has a default, so a missing mapping is filled in. */
export function defaulted<T>(schema: Schema<T>): Schema<T> {
  return withDefault(schema, () => schema.parse({}, '', new Context()));
}

/** A value that is one of two shapes, tried in order. */
export function either<A, B>(a: Schema<A>, b: Schema<B>, expected: string): Schema<A | B> {
  return {
    expected,
    parse(value, path, ctx) {
      const first = new Context();
      const parsed = a.parse(value, path, first);
      if (first.problems.length === 0) return parsed;
      const second = new Context();
      const other = b.parse(value, path, second);
      if (second.problems.length === 0) return other;
      return mismatch(ctx, path, expected, value, parsed);
    },
  };
}

/** A shell command given as one string or a list of strings; normalised to a list. */
export function commands(): Schema<string[]> {
  const item = string();
  const inner = either(item, list(item), 'a command string or a list of command strings');
  return {
    expected: inner.expected,
    parse(value, path, ctx) {
      const parsed = inner.parse(value, path, ctx);
      const all = typeof parsed === 'string' ? [parsed] : parsed;
      return all.filter((command) => command.trim() !== '');
    },
  };
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses a whole document, throwing one ValidationError that lists every problem. */
export function validate<T>(schema: Schema<T>, value: unknown, source: string): T {
  const ctx = new Context();
  const input = value === null || value === undefined ? {} : value;
  const parsed = schema.parse(input, '', ctx);
  if (ctx.problems.length > 0) throw new ValidationError(source, ctx.problems);
  return parsed;
}

/** Any YAML value, kept as it is (interpreter settings). */
export function anything(): Schema<unknown> {
  return { expected: 'any value', parse: (value) => value };
}
