/**
 * Reading a storage driver's parameters the way Distribution reads them, shared by the drivers'
 * `*-options.ts`: an empty or null value is unset; a string parameter takes numbers and booleans
 * (YAML scalars, environment overrides) as their text; booleans are Go's strconv.ParseBool
 * spellings; integers are decimal. Each driver words its own errors (they name the key, in the
 * phrasing its tests and users know), so a reader takes a `wrong` callback that throws.
 */

type Params = Record<string, unknown>;

/** Distribution treats an empty string like a missing key. */
export function isUnset(v: unknown): v is undefined | null | '' {
  return v === undefined || v === null || v === '';
}

/** A string parameter: undefined when unset, numbers and booleans as their text, `wrong(value)` for anything else. */
export function stringParam(o: Params, key: string, wrong: (value: unknown) => never): string | undefined {
  const v = o[key];
  if (isUnset(v)) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return wrong(v);
}

/** A boolean parameter: `fallback` when unset; true, 1, t and false, 0, f in any case as text. */
export function boolParam(o: Params, key: string, fallback: boolean, wrong: (value: unknown) => never): boolean {
  const v = o[key];
  if (isUnset(v)) return fallback;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(1|t|true)$/i.test(v)) return true;
  if (typeof v === 'string' && /^(0|f|false)$/i.test(v)) return false;
  return wrong(v);
}

/**
 * A whole-number parameter: undefined when unset; a number, or decimal digits as text (with an
 * optional sign unless `signed` is false); `wrong(value)` for anything else, fractions included.
 */
export function integerParam(o: Params, key: string, wrong: (value: unknown) => never, signed = true): number | undefined {
  const v = o[key];
  if (isUnset(v)) return undefined;
  const digits = signed ? /^\s*[-+]?\d+\s*$/ : /^\s*\d+\s*$/;
  const n = typeof v === 'number' ? v : typeof v === 'string' && digits.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) ? n : wrong(v);
}

/** An http or https URL parameter's value, parsed; `wrong()` for anything else. */
export function httpURL(value: string, wrong: () => never): URL {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return wrong();
  }
  return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed : wrong();
}

/**
 * The object-name prefix a `rootdirectory` gives, trimmed as Distribution's gcs and (3.x) azure drivers trim it: 'a/b/' for '/a/b/',
 * '' for '/', undefined when the key is unset; `wrong()` when it holds empty, '.' or '..' names.
 */
export function rootPrefix(root: string | undefined, wrong: () => never): string | undefined {
  if (root === undefined) return undefined;
  const trimmed = root.replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '') return '';
  if (trimmed.split('/').some((s) => s === '' || s === '.' || s === '..')) wrong();
  return `${trimmed}/`;
}
