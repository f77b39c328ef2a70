/**
 * A small OpenStack Swift client for the swift driver: the object, container and account calls
 * it needs, over one session (token + storage URL) that is renewed when Keystone says it expires
 * and, once per request, when the server answers 401 (an expired or revoked token). Whole-body
 * requests are replayed after a renewal; streamed uploads learn of a 401 before sending a byte
 * (Expect: 100-continue, see swift-http.ts).
 */
import { createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { authenticate, type SwiftSession } from './swift-auth.js';
import { drain, errorText, makeAgents, openUpload, readBody, send, SwiftError, type Agents, type UploadStream } from './swift-http.js';
import type { SwiftSettings } from './swift-options.js';

const USER_AGENT = 'wharf';
/** Renew a token this long before Keystone's expiry, so no request starts with a dying token. */
const RENEW_BEFORE_MS = 60_000;
/** Names asked for per listing page (Swift's default container_listing_limit is 10,000). */
const LIST_PAGE = 10_000;
/**
 * Servers may answer fewer names than asked (RGW caps pages at rgw_max_listing_results, 1,000), so
 * only a page shorter than this ends a listing without one more request.
 */
const SHORT_PAGE = 1_000;

export interface ObjectHead {
  size: number;
  modTime: Date;
  /** X-Object-Manifest: `<container>/<prefix>` of a dynamic large object's segments. */
  manifest?: string;
}

export type ListEntry = { name: string; bytes: number; modTime: Date } | { subdir: string };

export interface CallSpec {
  method: string;
  /** Below the storage URL: '' for the account, else `<container>` or `<container>/<object>`. */
  target: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer;
}

/** A name in a URL path: every '/'-separated piece percent-encoded. */
export function encodeName(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/** A header value that may be percent-encoded (Swift keeps X-Object-Manifest as the client sent it). */
function decodeName(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

export function dateOf(value: string | undefined): Date {
  if (!value) return new Date();
  // Swift lists times in UTC without a zone; RGW adds a 'Z'; HTTP dates carry 'GMT'.
  const t = Date.parse(/^\d{4}-\d\d-\d\dT[\d:.]+$/.test(value) ? `${value}Z` : value);
  return Number.isFinite(t) ? new Date(t) : new Date();
}

function isRetryableNetworkError(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  // A keep-alive socket the server closed while idle: the request never reached it.
  return code === 'ECONNRESET' || code === 'EPIPE';
}

export class SwiftConnection {
  readonly agents: Agents;
  private session: Promise<SwiftSession> | null = null;

  constructor(readonly settings: SwiftSettings) {
    this.agents = makeAgents(settings.insecureSkipVerify);
  }

  /** The session, made on first use, renewed ahead of a known expiry. */
  async current(): Promise<SwiftSession> {
    const pending = this.session;
    if (pending) {
      const s = await pending;
      if (s.expiresAt === undefined || s.expiresAt - Date.now() > RENEW_BEFORE_MS) return s;
      return this.renew(s);
    }
    return this.renew(null);
  }

  /** A new session, unless someone already replaced `stale` (many requests see the same 401). */
  renew(stale: SwiftSession | null): Promise<SwiftSession> {
    const pending = this.session;
    const fresh = async (): Promise<SwiftSession> => {
      if (pending) {
        const now = await pending.catch(() => null);
        if (now && now !== stale) return now;
      }
      return authenticate(this.settings, this.agents, USER_AGENT);
    };
    const next = fresh();
    this.session = next;
    next.catch(() => {
      if (this.session === next) this.session = null;
    });
    return next;
  }

  private url(session: SwiftSession, target: string, query?: Record<string, string>): string {
    const base = session.storageURL.replace(/\/+$/, '');
    const q = query ? `?${new URLSearchParams(query).toString()}` : '';
    return `${base}${target ? `/${encodeName(target)}` : ''}${q}`;
  }

  /** One request with the token; after a 401 the session is renewed and the request sent once more. */
  async call(spec: CallSpec): Promise<IncomingMessage> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.current();
      const request = {
        method: spec.method,
        url: this.url(session, spec.target, spec.query),
        headers: { ...spec.headers, 'X-Auth-Token': session.token, 'User-Agent': USER_AGENT },
        body: spec.body,
      };
      let res: IncomingMessage;
      try {
        res = await send(this.agents, request);
      } catch (err) {
        if (attempt > 0 || !isRetryableNetworkError(err)) throw err;
        continue;
      }
      if (res.statusCode === 401 && attempt === 0) {
        await drain(res);
        await this.renew(session);
        continue;
      }
      return res;
    }
  }

  /** A call whose answer must be 2xx (or one of `ok`); the body is drained. Returns the status. */
  async expect(spec: CallSpec, ok: number[] = []): Promise<{ status: number; headers: IncomingMessage['headers'] }> {
    const res = await this.call(spec);
    const status = res.statusCode ?? 0;
    if ((status < 200 || status > 299) && !ok.includes(status)) {
      throw new SwiftError(status, spec.method, `/${spec.target}`, await errorText(res));
    }
    await drain(res);
    return { status, headers: res.headers };
  }

  container(name?: string): string {
    return name === undefined ? this.settings.container : `${this.settings.container}/${name}`;
  }

  /** HEAD an object: null when it is not there. */
  async head(name: string): Promise<ObjectHead | null> {
    const { status, headers } = await this.expect({ method: 'HEAD', target: this.container(name) }, [404]);
    if (status === 404) return null;
    const manifest = headers['x-object-manifest'];
    return {
      size: Number(headers['content-length'] ?? 0),
      modTime: dateOf(headers['last-modified']),
      manifest: typeof manifest === 'string' && manifest !== '' ? decodeName(manifest) : undefined,
    };
  }

  /** PUT a whole object. */
  async put(name: string, body: Buffer, headers: Record<string, string> = {}): Promise<void> {
    await this.expect({ method: 'PUT', target: this.container(name), body, headers: { 'Content-Type': 'application/octet-stream', ...headers } });
  }

  /** DELETE an object: false when it was not there. */
  async delete(name: string, container = this.settings.container): Promise<boolean> {
    const { status } = await this.expect({ method: 'DELETE', target: `${container}/${name}` }, [404]);
    return status !== 404;
  }

  /** Server-side copy within the container: false when the source is not there. */
  async copy(from: string, to: string): Promise<boolean> {
    const { status } = await this.expect(
      { method: 'PUT', target: this.container(to), body: Buffer.alloc(0), headers: { 'X-Copy-From': `/${encodeName(this.container(from))}`, 'Content-Type': 'application/octet-stream' } },
      [404],
    );
    return status !== 404;
  }

  /** One page of a container listing, in name order. */
  async listPage(opts: { prefix: string; delimiter?: string; marker?: string; limit?: number; container?: string }): Promise<ListEntry[]> {
    const query: Record<string, string> = { format: 'json', prefix: opts.prefix, limit: String(opts.limit ?? LIST_PAGE) };
    if (opts.delimiter) query.delimiter = opts.delimiter;
    if (opts.marker) query.marker = opts.marker;
    const res = await this.call({ method: 'GET', target: opts.container ?? this.settings.container, query, headers: { Accept: 'application/json' } });
    if (res.statusCode === 204) {
      await drain(res);
      return [];
    }
    if (res.statusCode !== 200) throw new SwiftError(res.statusCode ?? 0, 'GET', `/${opts.container ?? this.settings.container}?prefix=${opts.prefix}`, await errorText(res));
    const items = JSON.parse((await readBody(res)).toString('utf8')) as Array<{ name?: string; subdir?: string; bytes?: number; last_modified?: string }>;
    return items.map((i) =>
      i.subdir !== undefined ? { subdir: i.subdir } : { name: i.name ?? '', bytes: Number(i.bytes ?? 0), modTime: dateOf(i.last_modified) },
    );
  }

  /** Every entry of a listing, page after page. */
  async *list(opts: { prefix: string; delimiter?: string; container?: string }): AsyncGenerator<ListEntry> {
    let marker: string | undefined;
    for (;;) {
      const page = await this.listPage({ ...opts, marker });
      for (const entry of page) yield entry;
      if (page.length < SHORT_PAGE) return;
      const last = page[page.length - 1];
      marker = 'subdir' in last ? last.subdir : last.name;
    }
  }

  /** Start streaming an object's body (a segment); a 401 before the body renews the session once. */
  async upload(name: string, headers: Record<string, string> = {}): Promise<UploadStream> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.current();
      const opened = await openUpload(this.agents, {
        method: 'PUT',
        url: this.url(session, this.container(name)),
        headers: { 'Content-Type': 'application/octet-stream', ...headers, 'X-Auth-Token': session.token, 'User-Agent': USER_AGENT },
      }).catch((err: unknown) => {
        if (attempt > 0 || !isRetryableNetworkError(err)) throw err;
        return null;
      });
      if (opened === null) continue;
      if ('stream' in opened) return opened.stream;
      const res = opened.refused;
      if (res.statusCode === 401 && attempt === 0) {
        await drain(res);
        await this.renew(session);
        continue;
      }
      throw new SwiftError(res.statusCode ?? 0, 'PUT', `/${this.container(name)}`, await errorText(res));
    }
  }

  /** Delete many objects (`<container>/<name>` each) with one request per `batch` (Swift's bulk delete). */
  async bulkDelete(names: string[], batch: number): Promise<void> {
    for (let i = 0; i < names.length; i += batch) {
      const body = Buffer.from(names.slice(i, i + batch).map((n) => `/${encodeName(n)}`).join('\n'));
      const res = await this.call({ method: 'POST', target: '', query: { 'bulk-delete': '' }, body, headers: { 'Content-Type': 'text/plain', Accept: 'application/json' } });
      if (res.statusCode !== 200) throw new SwiftError(res.statusCode ?? 0, 'POST', '/?bulk-delete', await errorText(res));
      const answer = JSON.parse((await readBody(res, 16 * 1024 * 1024)).toString('utf8')) as { 'Response Status'?: string; Errors?: unknown[][] };
      const status = answer['Response Status'] ?? '200 OK';
      // Objects already gone are counted as "Not Found", not as errors.
      if (!/^2\d\d/.test(status) || (answer.Errors ?? []).length > 0) {
        throw new Error(`swift: bulk delete answered ${status}: ${JSON.stringify(answer.Errors ?? []).slice(0, 300)}`);
      }
    }
  }

  /** The cluster's /info (capabilities), or null when the server does not publish it. */
  async info(): Promise<Record<string, any> | null> {
    const session = await this.current();
    const base = new URL(session.storageURL);
    const path = base.pathname.replace(/\/+$/, '');
    // Swift serves it beside /v1 (Distribution's client looks two levels up); RGW at /swift/info.
    const candidates = [path.split('/').slice(0, -2).join('/'), path.split('/').slice(0, -1).join('/')];
    for (const dir of [...new Set(candidates)]) {
      const url = new URL(`${dir}/info`, base).toString();
      try {
        const res = await send(this.agents, { method: 'GET', url, headers: { Accept: 'application/json', 'User-Agent': USER_AGENT } });
        if (res.statusCode !== 200) {
          await drain(res);
          continue;
        }
        const parsed = JSON.parse((await readBody(res, 1024 * 1024)).toString('utf8')) as unknown;
        if (parsed && typeof parsed === 'object' && 'swift' in parsed) return parsed as Record<string, any>;
      } catch {
        // not JSON, or not reachable: try the next place
      }
    }
    return null;
  }

  /** A temp URL (HMAC-SHA1 over "METHOD\nexpires\npath") of an object in the container. */
  async tempURL(name: string, method: string, key: string, expires: number, accessKey?: string): Promise<string> {
    const session = await this.current();
    const base = session.storageURL.replace(/\/+$/, '');
    const path = `${new URL(base).pathname}/${this.container(name)}`;
    let signature = createHmac('sha1', key).update(`${method}\n${expires}\n${path}`).digest('hex');
    if (accessKey) signature = `${this.settings.tenantId ?? session.tenantId ?? ''}:${accessKey}:${signature}`;
    return `${base}/${encodeName(this.container(name))}?temp_url_sig=${encodeURIComponent(signature)}&temp_url_expires=${expires}`;
  }
}
