/**
 * One configured endpoint (`notifications.endpoints[]`): its settings with Distribution's
 * defaults, the filter that drops ignored events before they are queued, one HTTP delivery
 * attempt, and Distribution's circuit breaker (`threshold` failures in a row, then one
 * attempt per `backoff`).
 */
import { createHash } from 'node:crypto';
import { EVENTS_MEDIA_TYPE, type Event } from './event.js';

export interface EndpointSettings {
  name: string;
  url: string;
  disabled?: boolean;
  /** Sent with every request; a name may carry several values. */
  headers: Record<string, string[]>;
  /** Milliseconds; ≤ 0 means Distribution's default (1 s). */
  timeout: number;
  /** Failures in a row before backing off; ≤ 0 means 10. */
  threshold: number;
  /** Milliseconds between attempts once backing off; ≤ 0 means 1 s. */
  backoff: number;
  /** `ignoredmediatypes` and `ignore.mediatypes` together. */
  ignoredMediaTypes: string[];
  /** `ignore.actions`. */
  ignoredActions: string[];
}

/** An enabled endpoint, defaults applied, with the name of its queue directory. */
export interface Endpoint extends EndpointSettings {
  /** A path segment naming this endpoint's queue; stable while the endpoint's name is. */
  key: string;
  /** How metrics and logs name it: its name, or its URL. */
  label: string;
}

/** Enabled endpoints with defaults applied. Throws, naming the key, for a URL that cannot be posted to. */
export function prepareEndpoints(all: EndpointSettings[]): Endpoint[] {
  const keys = new Set<string>();
  const out: Endpoint[] = [];
  all.forEach((e, i) => {
    if (e.disabled) return;
    let url: URL | undefined;
    try {
      url = new URL(e.url);
    } catch {
      /* reported below */
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new Error(`notifications.endpoints[${i}].url: expected an absolute http:// or https:// URL, got ${JSON.stringify(e.url)}`);
    }
    let key = queueKey(e.name);
    for (let n = 2; keys.has(key); n++) key = `${queueKey(e.name)}-${n}`;
    keys.add(key);
    out.push({
      ...e,
      key,
      label: e.name || e.url,
      timeout: e.timeout > 0 ? e.timeout : 1000,
      threshold: e.threshold > 0 ? e.threshold : 10,
      backoff: e.backoff > 0 ? e.backoff : 1000,
    });
  });
  return out;
}

/**
 * Keyed by name, not URL, so pointing an endpoint at a new URL keeps its queued events. The
 * hash keeps names that sanitize alike ("a b", "a_b") apart.
 */
function queueKey(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40) || 'endpoint';
  return `${safe}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

/** Whether the endpoint's filters drop this event (by the target's media type or the action). */
export function ignores(endpoint: Endpoint, event: Event): boolean {
  return endpoint.ignoredMediaTypes.includes(event.target.mediaType ?? '') || endpoint.ignoredActions.includes(event.action);
}

export type Attempt = { ok: true; status: number } | { ok: false; status?: number; error: string };

/**
 * POST one envelope. Any 2xx or 3xx answer (after redirects) means delivered, as in
 * Distribution; the timeout covers the whole exchange.
 */
export async function postEnvelope(endpoint: Endpoint, events: Event[], stop: AbortSignal): Promise<Attempt> {
  const headers = new Headers({ 'Content-Type': EVENTS_MEDIA_TYPE });
  for (const [name, values] of Object.entries(endpoint.headers)) for (const v of values) headers.append(name, v);
  // A controller and a timer held here, not AbortSignal.timeout/any: on Node 20 a garbage collection
  // can drop those signals before they fire (nodejs/node#55428), and a hung endpoint then hangs forever.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${endpoint.timeout} ms`, 'TimeoutError')), endpoint.timeout);
  const onStop = () => controller.abort(stop.reason);
  if (stop.aborted) onStop();
  else stop.addEventListener('abort', onStop, { once: true });
  try {
    const res = await fetch(endpoint.url, { method: 'POST', headers, body: JSON.stringify({ events }), signal: controller.signal, redirect: 'follow' });
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 200 && res.status < 400) return { ok: true, status: res.status };
    return { ok: false, status: res.status, error: `answered ${res.status}` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const reason = e.name === 'TimeoutError' ? `no answer within ${endpoint.timeout} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { ok: false, error: reason };
  } finally {
    clearTimeout(timer);
    stop.removeEventListener('abort', onStop);
  }
}

/**
 * Distribution's retry rule: after a failure, try again at once until `threshold` failures in a
 * row; from then on wait `backoff` after each failure. A success resets the count.
 */
export class Breaker {
  private failures = 0;
  private lastFailure = 0;

  constructor(
    private readonly threshold: number,
    private readonly backoff: number,
  ) {}

  /** Milliseconds to wait before the next attempt (0: go now). */
  waitMs(now = Date.now()): number {
    if (this.failures < this.threshold) return 0;
    return Math.max(0, this.lastFailure + this.backoff - now);
  }

  /** True when this failure opened the breaker (the moment worth a warning). */
  failure(now = Date.now()): boolean {
    this.failures++;
    this.lastFailure = now;
    return this.failures === this.threshold;
  }

  success(): void {
    this.failures = 0;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }
}
