/** What a handler receives: the request, the response, the registry service and URL helpers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { EventSink } from '../notifications/index.js';
import type { Registry } from '../registry/registry.js';

export interface ServerOptions {
  /** `http.host`: the externally visible base URL, e.g. https://registry.example.com. */
  host?: string;
  /** `http.relativeurls`: Location headers without scheme and host. */
  relativeURLs: boolean;
  /** `http.prefix`: a path prefix the registry is served under, e.g. /registry/. */
  prefix: string;
  /** `http.headers`: headers added to every response. */
  headers: Record<string, string[]>;
  /** `storage.maintenance.readonly.enabled`: every write answers 405 UNSUPPORTED. */
  readOnly?: boolean;
  /** `catalog.maxentries`. */
  catalogMaxEntries: number;
}

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  registry: Registry;
  log: Logger;
  options: ServerOptions;
  query: URLSearchParams;
  /** Repository name from the path (already checked against the grammar). */
  name: string;
  /** Tag, digest or upload id from the path (percent-decoded). */
  reference: string;
  /** The authenticated user, when `auth` is configured. */
  user?: string;
  /** False when `auth` refused pull on a cross-repository mount's `from`: upload instead of mounting. */
  mountAllowed?: boolean;
  /** `notifications`: where the request's events go (see notify.ts); absent when none is configured. */
  events?: EventSink;
}

/** Absolute URL for a path under /v2/, as Distribution builds them (or relative when configured). */
export function urlFor(ctx: RequestContext, path: string): string {
  const prefixed = `${ctx.options.prefix.replace(/\/$/, '')}${path}`;
  if (ctx.options.relativeURLs) return prefixed;
  if (ctx.options.host) return `${ctx.options.host.replace(/\/$/, '')}${prefixed}`;
  const forwardedProto = headerValue(ctx.req, 'x-forwarded-proto');
  const forwardedHost = headerValue(ctx.req, 'x-forwarded-host');
  const encrypted = (ctx.req.socket as { encrypted?: boolean }).encrypted === true;
  const scheme = forwardedProto ?? (encrypted ? 'https' : 'http');
  const host = forwardedHost ?? ctx.req.headers.host ?? 'localhost';
  return `${scheme}://${host}${prefixed}`;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  const first = Array.isArray(v) ? v[0] : v;
  return first ? first.split(',')[0]!.trim() : undefined;
}
