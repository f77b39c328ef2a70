/**
 * One SERVER span per API request, named and described as OpenTelemetry's HTTP semantic
 * conventions ask: "<METHOD> <route>" with the route's template ("/v2/{name}/blobs/{digest}"),
 * never the concrete path, so span names stay few. The request's handler runs inside the span's
 * context: the storage calls it makes become the span's children. The span ends when the response
 * finishes or the connection closes first (an aborted download), so none is left open.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import { clientIP } from '../server/client-ip.js';
import { matchRoute, type RouteMatch, type RouteName } from '../server/routes.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface RequestTracingOptions {
  /** `http.prefix` without its trailing '/', as the app strips it. */
  prefix: string;
}

/** The low-cardinality form of each route (http.route), after the prefix. */
export const ROUTE_TEMPLATES: Record<RouteName, string> = {
  base: '/v2/',
  catalog: '/v2/_catalog',
  tags: '/v2/{name}/tags/list',
  blob: '/v2/{name}/blobs/{digest}',
  uploadStart: '/v2/{name}/blobs/uploads/',
  upload: '/v2/{name}/blobs/uploads/{uuid}',
  manifest: '/v2/{name}/manifests/{reference}',
  referrers: '/v2/{name}/referrers/{digest}',
  repository: '/v2/_wharf/repositories/{name}',
};

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE']);

const headerGetter: TextMapGetter<IncomingMessage['headers']> = {
  get: (headers, key) => headers[key],
  keys: (headers) => Object.keys(headers),
};

export function traceRequests(handler: Handler, tracer: Tracer, options: RequestTracingOptions): Handler {
  const prefix = options.prefix.replace(/\/$/, '');
  return (req, res) => {
    const parent = propagation.extract(ROOT_CONTEXT, req.headers, headerGetter);
    const { name, attributes } = describe(req, prefix);
    const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
    let ended = false;
    const end = (complete: boolean) => {
      if (ended) return;
      ended = true;
      if (res.headersSent) {
        span.setAttribute('http.response.status_code', res.statusCode);
        if (res.statusCode >= 500) {
          span.setAttribute('error.type', String(res.statusCode));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
      }
      // 'close' before 'finish': the client left before the whole response was sent.
      if (!complete) span.addEvent('client closed the connection before the response was complete');
      span.end();
    };
    res.once('finish', () => end(true));
    res.once('close', () => end(false));
    context.with(trace.setSpan(parent, span), () => handler(req, res));
  };
}

/** The span's name and its attributes known before the handler runs (read now: the socket may be detached later). */
function describe(req: IncomingMessage, prefix: string): { name: string; attributes: Attributes } {
  const method = req.method ?? '';
  const known = KNOWN_METHODS.has(method);
  const rawUrl = req.url ?? '/';
  const q = rawUrl.indexOf('?');
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const match = !prefix || path.startsWith(`${prefix}/`) ? matchRoute(prefix ? path.slice(prefix.length) : path) : null;
  const route = match ? `${prefix}${ROUTE_TEMPLATES[match.route]}` : undefined;
  const socket = req.socket as TLSSocket | undefined;
  const scheme = socket?.encrypted ? 'https' : 'http';
  const attributes: Attributes = {
    'http.request.method': known ? method : '_OTHER',
    ...(!known && { 'http.request.method_original': method }),
    'url.scheme': scheme,
    'url.path': path,
    ...(q >= 0 && { 'url.query': rawUrl.slice(q + 1) }),
    ...(route && { 'http.route': route }),
    ...hostAttributes(req, scheme),
    'client.address': clientIP(req),
    ...(socket?.remoteAddress && { 'network.peer.address': socket.remoteAddress, 'network.peer.port': socket.remotePort }),
    'network.protocol.version': req.httpVersion === '2.0' ? '2' : req.httpVersion,
    ...(req.headers['user-agent'] && { 'user_agent.original': req.headers['user-agent'] }),
    ...(match && registryAttributes(match, rawUrl, q)),
  };
  return { name: `${known ? method : 'HTTP'}${route ? ` ${route}` : ''}`, attributes };
}

/** server.address/port from Host (or HTTP/2's :authority), as the client addressed the registry. */
function hostAttributes(req: IncomingMessage, scheme: string): Attributes {
  const host = req.headers.host ?? (req.headers[':authority'] as string | undefined);
  if (!host) return {};
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host);
  if (!m) return {};
  return { 'server.address': m[1].replace(/^\[|\]$/g, ''), 'server.port': m[2] ? Number(m[2]) : scheme === 'https' ? 443 : 80 };
}

/** Which repository, tag, digest or upload the request is about. */
function registryAttributes(match: RouteMatch, rawUrl: string, q: number): Attributes {
  const out: Attributes = {};
  if (match.name !== undefined) out['wharf.repository'] = match.name;
  const ref = match.reference;
  if (ref !== undefined) {
    if (match.route === 'upload') out['wharf.upload.uuid'] = ref;
    else if (ref.includes(':')) out['wharf.digest'] = ref;
    else out['wharf.tag'] = ref;
  }
  // The digest a finished upload (PUT …?digest=) or a mount (POST …?mount=) names.
  if ((match.route === 'upload' || match.route === 'uploadStart') && q >= 0) {
    const query = new URLSearchParams(rawUrl.slice(q + 1));
    const digest = query.get('digest') ?? query.get('mount');
    if (digest) out['wharf.digest'] = digest;
  }
  return out;
}
