/**
 * Per-request HTTP metrics: count, latency, body bytes in and out, by route ("handler", named as
 * Distribution names its routes so existing dashboards match), method and status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { RouteName } from '../server/routes.js';

/** Distribution's route names (with '-' → '_', as it labels them); Wharf's own routes get a `wharf_` name. */
export const HANDLER_NAMES: Record<RouteName, string> = {
  base: 'base',
  catalog: 'catalog',
  tags: 'tags',
  blob: 'blob',
  uploadStart: 'blob_upload',
  upload: 'blob_upload_chunk',
  manifest: 'manifest',
  referrers: 'referrers',
  repository: 'wharf_repository',
};

/** Paths that match no route (404 pages, or any path while a health check fails). */
const UNMATCHED = 'unmatched';
/** Method labels are lower case, as Go's promhttp writes them in Distribution's metrics. */
const METHODS: Record<string, string> = { GET: 'get', HEAD: 'head', POST: 'post', PUT: 'put', PATCH: 'patch', DELETE: 'delete', OPTIONS: 'options' };
/** Label for a request whose client left before any response header was sent (nginx's "client closed request"). */
const CLIENT_GONE = '499';

export interface HttpCollectors {
  requests: Counter<'handler' | 'method' | 'code'>;
  duration: Histogram<'handler' | 'method'>;
  requestSize: Histogram<'handler'>;
  responseSize: Histogram<'handler'>;
  inFlight: Gauge<'handler'>;
}

export class HttpMetrics {
  constructor(readonly collectors: HttpCollectors) {
    // Every route shows from the start (at 0), as in Distribution.
    for (const handler of Object.values(HANDLER_NAMES)) collectors.inFlight.set({ handler }, 0);
  }

  /** Start measuring one request; it is recorded once when the response finishes or the connection closes. */
  track(req: IncomingMessage, res: ServerResponse): RequestTracker {
    return new RequestTracker(this.collectors, req, res);
  }
}

export class RequestTracker {
  private handler = UNMATCHED;
  private received = 0;
  private sent = 0;
  private inFlight = false;
  private done = false;
  private readonly started = process.hrtime.bigint();

  constructor(
    private readonly c: HttpCollectors,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    this.countBodies();
    const record = () => this.record();
    res.once('finish', record);
    res.once('close', record);
  }

  /** The request matched this route (called once, before the handler runs). */
  matched(route: RouteName): void {
    this.handler = HANDLER_NAMES[route];
    this.inFlight = true;
    this.c.inFlight.inc({ handler: this.handler });
  }

  /**
   * Bytes are counted where they pass, without touching the streams' flow: handlers read request
   * bodies with async iteration (a 'data' listener would switch the stream to flowing mode), so the
   * count sits on `push`, through which Node's HTTP/1 parser and HTTP/2 compatibility layer hand each
   * body chunk to the request; response bytes are counted on `write`/`end`.
   */
  private countBodies(): void {
    const req = this.req as IncomingMessage & { push(chunk: unknown, encoding?: BufferEncoding): boolean };
    const push = req.push;
    req.push = (chunk: unknown, encoding?: BufferEncoding) => {
      if (chunk) this.received += byteLength(chunk, encoding);
      return push.call(req, chunk, encoding);
    };
    const res = this.res as unknown as { write: (...a: unknown[]) => boolean; end: (...a: unknown[]) => unknown };
    const write = res.write;
    const end = res.end;
    // HTTP/2's `end(chunk)` calls `this.write(chunk)`: that chunk is counted once, by `end`.
    let ending = false;
    res.write = (...args: unknown[]) => {
      if (!ending) this.sent += byteLength(args[0], typeof args[1] === 'string' ? (args[1] as BufferEncoding) : undefined);
      return write.apply(res, args);
    };
    res.end = (...args: unknown[]) => {
      if (typeof args[0] !== 'function') this.sent += byteLength(args[0], typeof args[1] === 'string' ? (args[1] as BufferEncoding) : undefined);
      ending = true;
      try {
        return end.apply(res, args);
      } finally {
        ending = false;
      }
    };
  }

  private record(): void {
    if (this.done) return;
    this.done = true;
    const handler = this.handler;
    const method = METHODS[this.req.method ?? ''] ?? 'other';
    const code = this.res.headersSent ? String(this.res.statusCode) : CLIENT_GONE;
    const seconds = Number(process.hrtime.bigint() - this.started) / 1e9;
    this.c.requests.inc({ handler, method, code });
    this.c.duration.observe({ handler, method }, seconds);
    this.c.requestSize.observe({ handler }, this.received);
    this.c.responseSize.observe({ handler }, this.sent);
    if (this.inFlight) this.c.inFlight.dec({ handler });
  }
}

function byteLength(chunk: unknown, encoding?: BufferEncoding): number {
  if (chunk === null || chunk === undefined) return 0;
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, encoding);
  if (ArrayBuffer.isView(chunk)) return chunk.byteLength;
  return 0;
}
