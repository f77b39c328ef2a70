/**
 * Readers for the value types of the OpenTelemetry SDK environment variables, as the OTel
 * specification defines them: an empty value is the same as an unset one, enum values are
 * case-insensitive, lists are comma-separated. A value that does not fit is reported (variable,
 * what was expected) instead of the SDK's silent fallback, so a typo cannot quietly turn tracing
 * off or send spans elsewhere.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export type Env = Readonly<Record<string, string | undefined>>;

/** Collects one message per bad variable, so start-up reports them all at once. */
export class EnvReader {
  readonly problems: string[] = [];

  constructor(private readonly env: Env) {}

  /** The trimmed value, or undefined when unset or empty. */
  string(name: string): string | undefined {
    const v = this.env[name]?.trim();
    return v ? v : undefined;
  }

  /** The first of `names` that is set, with its name. */
  first(...names: string[]): { name: string; value: string } | undefined {
    for (const name of names) {
      const value = this.string(name);
      if (value !== undefined) return { name, value };
    }
    return undefined;
  }

  problem(name: string, expected: string, got?: string): void {
    this.problems.push(`${name}: expected ${expected}${got === undefined ? '' : `, got ${JSON.stringify(got)}`}`);
  }

  bool(name: string): boolean {
    const v = this.string(name)?.toLowerCase();
    if (v === undefined || v === 'false') return false;
    if (v === 'true') return true;
    this.problem(name, 'true or false', this.string(name));
    return false;
  }

  /** A lower-cased, comma-separated list of names; unset: undefined. */
  list(name: string, allowed: readonly string[]): string[] | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const items = v.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
    const bad = items.filter((i) => !allowed.includes(i));
    if (bad.length > 0) this.problem(name, `a comma-separated list of ${orList(allowed)}`, bad.join(','));
    return items.filter((i) => allowed.includes(i));
  }

  /** One of `allowed` (lower-cased); unset: undefined. */
  choice<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const v = this.string(name)?.toLowerCase();
    if (v === undefined) return undefined;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    this.problem(name, orList(allowed), this.string(name));
    return undefined;
  }

  /** An integer of at least `min`; unset: undefined. */
  integer(name: string, min: number): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (/^\d+$/.test(v) && Number.isSafeInteger(n) && n >= min) return n;
    this.problem(name, `a whole number of at least ${min}`, v);
    return undefined;
  }

  /**
   * W3C Baggage-style `key=value,key2=value2` with percent-encoded values (OTEL_RESOURCE_ATTRIBUTES,
   * OTEL_EXPORTER_OTLP_HEADERS). `secret` keeps the value out of messages (headers carry tokens).
   */
  keyValues(name: string, secret = false): Record<string, string> {
    const out: Record<string, string> = {};
    const v = this.string(name);
    if (v === undefined) return out;
    const entries = v.split(',').filter((e) => e.trim() !== '');
    for (const [i, entry] of entries.entries()) {
      const eq = entry.indexOf('=');
      const key = eq < 0 ? '' : entry.slice(0, eq).trim();
      let value: string | undefined;
      try {
        value = eq < 0 ? undefined : decodeURIComponent(entry.slice(eq + 1).trim());
      } catch {
        value = undefined;
      }
      if (!key || value === undefined) {
        const where = `comma-separated key=value pairs with percent-encoded values (entry ${i + 1} is not one)`;
        this.problem(name, where, secret ? undefined : entry);
        continue;
      }
      out[key] = value;
    }
    return out;
  }

  /** The content of the file the first set variable names (relative to the working directory). */
  file(...names: string[]): Buffer | undefined {
    const set = this.first(...names);
    if (!set) return undefined;
    try {
      return readFileSync(resolve(set.value));
    } catch (err) {
      this.problem(set.name, `a readable file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, set.value);
      return undefined;
    }
  }
}

export function orList(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}
