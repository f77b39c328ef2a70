// Small zod building blocks shared by the schema files. Every message says
// what was expected; the loader adds the key path, the environment variable
// and the value it got.
import { z } from 'zod';
import { parseDuration } from './duration.js';

export const DURATION_MSG = 'expected a duration such as "5s", "1h30m" or "300ms" (or an integer number of nanoseconds)';

export const str = () => z.string({ error: 'expected a string' });
export const bool = () => z.boolean({ error: 'expected true or false' });

/** An integer, optionally with a lower bound. */
export function int(min?: number) {
  const msg = min === undefined ? 'expected an integer' : `expected an integer ≥ ${min}`;
  const base = z.int({ error: msg });
  return min === undefined ? base : base.min(min, { error: msg });
}

/** A Go duration string or integer nanoseconds, output in milliseconds. */
export const duration = () =>
  z.union([z.int(), z.string()], { error: DURATION_MSG }).transform((v, ctx) => {
    try {
      return parseDuration(v);
    } catch {
      ctx.issues.push({ code: 'custom', message: DURATION_MSG, input: v });
      return z.NEVER;
    }
  });

/** A nested mapping; absent or empty (`key:` with nothing) means all defaults. */
export const section = <S extends z.core.$ZodLooseShape>(shape: S) =>
  z.preprocess((v) => v ?? {}, z.object(shape, { error: 'expected a mapping' }));

/** A list; absent or empty means no entries. */
export const list = <T extends z.ZodType>(item: T) => z.preprocess((v) => v ?? [], z.array(item, { error: 'expected a list' }));

export const strList = () => list(str());

/** One of fixed words; `lower` accepts any letter case, like Distribution's log levels. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T, opts: { lower?: boolean } = {}) {
  const msg = `expected one of ${values.join(', ')}`;
  return z.preprocess((v) => (opts.lower && typeof v === 'string' ? v.toLowerCase() : v), z.enum(values, { error: msg }));
}

/** A free-form mapping (log.fields, middleware options). */
export const anyMap = () =>
  z.preprocess((v) => v ?? {}, z.record(z.string(), z.unknown(), { error: 'expected a mapping' }));

/** HTTP header map: name to a list of values (a single value is accepted too). */
export const headerMap = () =>
  z.preprocess(
    (v) => v ?? {},
    z.record(
      z.string(),
      z.preprocess(
        (v) => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? [String(v)] : v),
        z.array(str(), { error: 'expected a list of header values' }),
      ),
      { error: 'expected a mapping of header names to lists of values' },
    ),
  );

/** A string that must compile as a regular expression. */
export const regex = () =>
  str().refine(
    (s) => {
      try {
        new RegExp(s);
        return true;
      } catch {
        return false;
      }
    },
    { error: 'expected a valid regular expression' },
  );

// Storage driver parameters: Distribution's drivers read these from an untyped
// map and accept strings for booleans and numbers too.
const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

export const paramBool = () =>
  z.union([z.boolean(), z.string()], { error: 'expected true or false' }).transform((v, ctx) => {
    if (typeof v === 'boolean') return v;
    if (GO_TRUE.has(v)) return true;
    if (GO_FALSE.has(v)) return false;
    ctx.issues.push({ code: 'custom', message: 'expected true or false', input: v });
    return z.NEVER;
  });

export function paramInt(min?: number) {
  const msg = min === undefined ? 'expected an integer' : `expected an integer ≥ ${min}`;
  return z.union([z.int(), z.string()], { error: msg }).transform((v, ctx) => {
    const n = typeof v === 'number' ? v : /^\s*[-+]?\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || (min !== undefined && n < min)) {
      ctx.issues.push({ code: 'custom', message: msg, input: v });
      return z.NEVER;
    }
    return n;
  });
}
