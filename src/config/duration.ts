// Go duration strings ("300ms", "1h30m", "-1.5h") as Distribution reads them
// (time.ParseDuration), converted to milliseconds. A bare number is a count of
// nanoseconds, like a time.Duration decoded from an integer in Go YAML.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5 MICRO SIGN
  'μs': 1e-3, // U+03BC GREEK SMALL LETTER MU
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d*\.?\d*)([^\d.]+)/y;

/**
 * Parses a Go duration ("5s", "1h30m", "300ms", "0") or an integer number of
 * nanoseconds, returning milliseconds. Throws an Error describing the problem.
 */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isInteger(input)) throw new Error(`invalid duration ${input}: a bare number is a whole count of nanoseconds`);
    return input / 1e6;
  }
  const s = input.trim();
  if (s === '') throw new Error('invalid duration "": empty');
  let sign = 1;
  let i = 0;
  if (s[0] === '-' || s[0] === '+') {
    sign = s[0] === '-' ? -1 : 1;
    i = 1;
  }
  const body = s.slice(i);
  if (body === '0') return 0;
  if (body === '') throw new Error(`invalid duration "${input}"`);
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < body.length) {
    const start = PART.lastIndex;
    const m = PART.exec(body);
    if (!m || m.index !== start) {
      throw new Error(`invalid duration "${input}": missing unit (one of ns, us, ms, s, m, h)`);
    }
    const [, num, unit] = m;
    if (num === '' || num === '.') throw new Error(`invalid duration "${input}"`);
    const factor = UNIT_MS[unit];
    if (factor === undefined) throw new Error(`invalid duration "${input}": unknown unit "${unit}"`);
    total += Number(num) * factor;
  }
  if (/\d$/.test(body)) throw new Error(`invalid duration "${input}": missing unit (one of ns, us, ms, s, m, h)`);
  return sign * total;
}

/** Formats milliseconds as a Go-style duration string ("1h30m0s" becomes "1h30m"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const neg = ms < 0;
  let rest = Math.abs(ms);
  const parts: string[] = [];
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  if (rest > 0) parts.push(`${+rest.toFixed(6)}ms`);
  return (neg ? '-' : '') + parts.join('');
}
