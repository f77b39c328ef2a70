/**
 * Reading one middleware entry's `options` map with errors that name the key, e.g.
 * `middleware.storage[0].options.baseurl: required, an absolute http(s) URL`.
 */
import { ConfigError, describeValue } from '../../config/errors.js';
import { parseDuration } from '../../config/duration.js';

export class MiddlewareOptions {
  constructor(
    /** `middleware.storage[0]` */
    readonly entryKey: string,
    readonly raw: Record<string, unknown>,
  ) {}

  keyOf(name: string): string {
    return `${this.entryKey}.options.${name}`;
  }

  fail(name: string, problem: string): never {
    throw new ConfigError(`${this.keyOf(name)}: ${problem}`);
  }

  has(name: string): boolean {
    return this.raw[name] !== undefined && this.raw[name] !== null;
  }

  /** A string option; `expected` says what it should be when missing or not a string. */
  string(name: string, expected: string, required: true): string;
  string(name: string, expected: string, required?: false): string | undefined;
  string(name: string, expected: string, required = false): string | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null) {
      if (required) this.fail(name, `required, ${expected}`);
      return undefined;
    }
    if (typeof v !== 'string') this.fail(name, `expected ${expected}, got ${describeValue(v)}`);
    return v;
  }

  /**
   * A Go duration string in ms. As in Distribution, a number (no unit) is ignored and the default
   * used; `onIgnored` reports it. Zero or negative durations are refused.
   */
  duration(name: string, fallbackMs: number, onIgnored: (message: string) => void): number {
    const v = this.raw[name];
    if (v === undefined || v === null) return fallbackMs;
    if (typeof v === 'number') {
      onIgnored(`${this.keyOf(name)}: ${v} has no unit, so it is ignored as Distribution does; using the default. Write e.g. "${v}s"`);
      return fallbackMs;
    }
    if (typeof v !== 'string') this.fail(name, `expected a duration such as "20m", got ${describeValue(v)}`);
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch (err) {
      this.fail(name, `expected a duration such as "20m": ${(err as Error).message}`);
    }
    if (!(ms > 0)) this.fail(name, `expected a positive duration, got "${v}"`);
    return ms;
  }

  /** Keys other than `known`, which Distribution ignores: reported so typos do not pass silently. */
  unknownKeys(known: readonly string[]): string[] {
    return Object.keys(this.raw).filter((k) => !known.includes(k)).map((k) => this.keyOf(k));
  }
}

/** An absolute http(s) URL with a host, or a message saying what is wrong. */
export function checkHttpURL(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `expected an absolute http(s) URL such as "https://cdn.example.com", got ${JSON.stringify(value)}`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `expected an http or https URL, got scheme "${url.protocol.slice(0, -1)}"`;
  if (url.hostname === '') return `expected a URL with a host, got ${JSON.stringify(value)}`;
  return null;
}
