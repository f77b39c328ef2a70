/**
 * The HTTP front: one Node `http` server, one route table, one error writer. Request
 * lifecycle: match route → check method → check name → handler → (errors) sendError → access log.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { RegistryError } from '../registry/errors.js';
import { checkName } from '../registry/names.js';
import type { Registry } from '../registry/registry.js';
import type { RequestContext, ServerOptions } from './context.js';
import { deleteBlob, getBlob } from './handlers/blobs.js';
import { catalog, deleteRepository, listReferrers, listTags } from './handlers/listings.js';
import { deleteManifest, getManifest, putManifest } from './handlers/manifests.js';
import { cancelUpload, patchUpload, putUpload, startUpload, uploadStatus } from './handlers/uploads.js';
import type { HealthStatus } from '../health/index.js';
import type { HttpMetrics, RequestTracker } from '../metrics/http.js';
import type { EventSink } from '../notifications/index.js';
import type { ProxyRouter } from '../proxy/index.js';
import { accessLogLine } from './access-log.js';
import { AuthChallenge, type Access, type AccessController } from './auth/index.js';
import { API_VERSION_HEADER, sendError, sendJSON, sendNotFoundPage } from './respond.js';
import { matchRoute, type RouteName } from './routes.js';

type Handler = (ctx: RequestContext) => Promise<void>;

const HANDLERS: Record<RouteName, Partial<Record<string, Handler>>> = {
  base: { GET: base, HEAD: base },
  catalog: { GET: catalog, HEAD: catalog },
  tags: { GET: listTags, HEAD: listTags },
  blob: { GET: getBlob, HEAD: getBlob, DELETE: deleteBlob },
  uploadStart: { POST: startUpload },
  upload: { GET: uploadStatus, HEAD: uploadStatus, PATCH: patchUpload, PUT: putUpload, DELETE: cancelUpload },
  manifest: { GET: getManifest, HEAD: getManifest, PUT: putManifest, DELETE: deleteManifest },
  referrers: { GET: listReferrers, HEAD: listReferrers },
  repository: { DELETE: deleteRepository },
};

async function base(ctx: RequestContext): Promise<void> {
  sendJSON(ctx.res, 200, {});
}

export interface AppDeps {
  registry: Registry;
  log: Logger;
  options: ServerOptions;
  accessLog: boolean;
  /** The configured `auth` access controller; none: every request passes. */
  access?: AccessController;
  /** `health` checks: while one fails, every request answers 503. */
  health?: HealthStatus;
  /** Present when metrics are on (`http.debug.prometheus`). */
  metrics?: HttpMetrics;
  /** `notifications` endpoints are configured: handlers queue their events here. */
  events?: EventSink;
  /** `proxy`: cached repositories get the pull-through cache's handlers. */
  proxy?: ProxyRouter;
}

export interface RunningServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export function createApp(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { options } = deps;
  const prefix = options.prefix.replace(/\/$/, '');
  const extraHeaders = Object.entries(options.headers);
  return (req, res) => {
    const started = process.hrtime.bigint();
    res.setHeader(API_VERSION_HEADER, 'registry/2.0');
    for (const [k, v] of extraHeaders) res.setHeader(k, v);
    if (deps.accessLog) res.once('finish', () => deps.log.info(accessLogLine(req, res, started)));
    const tracker = deps.metrics?.track(req, res);
    handle(deps, req, res, prefix, tracker).catch((err) => {
      if (!(err instanceof RegistryError)) logFailure(deps.log, req, err);
      sendError(req, res, err);
    });
  };
}

function logFailure(log: Logger, req: IncomingMessage, err: unknown): void {
  const code = (err as NodeJS.ErrnoException)?.code;
  // A client that went away mid-body is routine, not a server fault.
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error)?.message === 'aborted') {
    log.debug({ method: req.method, url: req.url, err: String(err) }, 'client disconnected');
    return;
  }
  log.error({ method: req.method, url: req.url, err }, 'request failed');
}

async function handle(deps: AppDeps, req: IncomingMessage, res: ServerResponse, prefix: string, tracker?: RequestTracker): Promise<void> {
  const rawUrl = req.url ?? '/';
  const q = rawUrl.indexOf('?');
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const inPrefix = !prefix || path.startsWith(`${prefix}/`);
  const match = inPrefix ? matchRoute(prefix ? path.slice(prefix.length) : path) : null;
  if (match) tracker?.matched(match.route);
  // As Distribution's health.Handler: while a health check fails, every path answers 503.
  if (deps.health && !deps.health.healthy) {
    throw new RegistryError('UNAVAILABLE', undefined, 'health check failed: please see /debug/health');
  }
  if (!match) return sendNotFoundPage(res);
  const handler = HANDLERS[match.route][req.method ?? ''];
  if (!handler) {
    res.setHeader('Allow', match.allowed.join(', '));
    throw new RegistryError('UNSUPPORTED', `method ${req.method} not allowed on this route`, undefined, 405);
  }
  const name = match.name ?? '';
  if (match.name !== undefined) checkName(name);
  const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
  const auth = deps.access ? await authorize(deps, req, match.route, name, query) : undefined;
  if (deps.options.readOnly && req.method !== 'GET' && req.method !== 'HEAD') {
    throw new RegistryError('UNSUPPORTED', 'the registry is in read-only mode (storage.maintenance.readonly): writes are refused', undefined, 405);
  }
  const ctx: RequestContext = {
    req,
    res,
    registry: deps.registry,
    log: deps.log,
    options: deps.options,
    query,
    name,
    reference: match.reference ?? '',
    ...(auth && { user: auth.user, mountAllowed: auth.mountAllowed }),
    ...(deps.events && { events: deps.events }),
  };
  const proxied = match.name === undefined ? undefined : deps.proxy?.handlerFor(match.route, req.method ?? '', name);
  await (proxied ?? handler)(ctx);
}

/** The accesses a route needs, as Distribution's appendAccessRecords: reads pull, writes pull+push, DELETE delete. */
function neededAccesses(route: RouteName, method: string, name: string): Access[] {
  if (route === 'base') return []; // authentication only
  if (route === 'catalog') return [{ type: 'registry', name: 'catalog', actions: ['*'] }];
  if (method === 'GET' || method === 'HEAD') return [{ type: 'repository', name, actions: ['pull'] }];
  if (method === 'DELETE') return [{ type: 'repository', name, actions: ['delete'] }];
  return [{ type: 'repository', name, actions: ['pull', 'push'] }];
}

/**
 * Ask the access controller before the handler runs. A cross-repository mount also asks for pull on
 * `from`; when only that is refused, the request goes on as a plain upload (no mount) instead of failing.
 * Refusals are logged without secrets: credentials missing at debug level (every client's first request),
 * credentials refused at info.
 */
async function authorize(
  deps: AppDeps,
  req: IncomingMessage,
  route: RouteName,
  name: string,
  query: URLSearchParams,
): Promise<{ user: string; mountAllowed: boolean }> {
  const access = deps.access!;
  const needed = neededAccesses(route, req.method ?? '', name);
  const from = route === 'uploadStart' ? query.get('from') : null;
  let fromValid = false;
  if (from !== null && from !== '') {
    try {
      checkName(from);
      fromValid = true;
    } catch {
      /* the handler answers NAME_INVALID */
    }
  }
  try {
    if (!fromValid) return { user: (await access.authorized(req, needed)).user, mountAllowed: true };
    const withFrom: Access[] = [...needed, { type: 'repository', name: from!, actions: ['pull'] }];
    try {
      return { user: (await access.authorized(req, withFrom)).user, mountAllowed: true };
    } catch (err) {
      if (!(err instanceof AuthChallenge)) throw err;
      try {
        const grant = await access.authorized(req, needed);
        deps.log.debug({ method: req.method, path: req.url?.split('?')[0], user: grant.user, from }, 'no pull access on the mount source: plain upload');
        return { user: grant.user, mountAllowed: false };
      } catch {
        throw err; // the challenge that names every scope, so a token for the mount can be asked for
      }
    }
  } catch (err) {
    if (err instanceof AuthChallenge) {
      const entry = { method: req.method, path: req.url?.split('?')[0], remote: req.socket?.remoteAddress, reason: err.reason };
      if (err.hadCredentials) deps.log.info(entry, 'access refused');
      else deps.log.debug(entry, 'access refused');
    }
    throw err;
  }
}

/** Listen on `addr` ("host:port", ":port"); resolves once bound. */
export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  addr: string,
): Promise<RunningServer> {
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 }, handler);
  const i = addr.lastIndexOf(':');
  const host = i <= 0 ? undefined : addr.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(addr.slice(i + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
