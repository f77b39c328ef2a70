/** The only code that writes the `{"errors":[…]}` envelope, and small response helpers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERROR_CODES, RegistryError } from '../registry/errors.js';
import { isBackendUnavailable } from '../storage/unavailable.js';

export const API_VERSION_HEADER = 'Docker-Distribution-API-Version';

export function sendJSON(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    ...headers,
    'Content-Type': headers['Content-Type'] ?? 'application/json; charset=utf-8',
    'Content-Length': payload.length,
  });
  res.end(payload);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string | number> = {}): void {
  res.writeHead(status, { ...headers, 'Content-Length': 0 });
  res.end();
}

/** What the client is told: registry errors as they are, an unreachable storage backend as 503, the rest as 500. */
export function clientError(err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  if (isBackendUnavailable(err)) return new RegistryError('UNAVAILABLE', 'the storage backend is unavailable; try again later');
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new RegistryError('UNKNOWN', 'no space left in the registry storage');
  return new RegistryError('UNKNOWN', ERROR_CODES.UNKNOWN.message);
}

/**
 * Answer with a registry error; a storage backend that cannot be reached becomes UNAVAILABLE/503,
 * anything else UNKNOWN/500, with no internals shown.
 * When the response has begun, the connection is cut: a half-sent body must not look whole.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const e = clientError(err);
  const entry: Record<string, unknown> = { code: e.code, message: e.message };
  if (e.detail !== undefined) entry.detail = e.detail;
  // A request body we did not read would otherwise be parsed as the next request.
  // (Set before writing: after writeHead, setHeader throws.)
  // HTTP/2 has no Connection header (the stream is reset instead): only HTTP/1.x gets it.
  if (!req.complete && req.httpVersionMajor < 2) res.setHeader('Connection', 'close');
  // An access controller's refusal carries its WWW-Authenticate challenge.
  const challenge = (e as { headers?: Record<string, string> }).headers;
  sendJSON(res, e.status, { errors: [entry] }, challenge ? { ...challenge, ...extraHeaders } : extraHeaders);
}

export function sendNotFoundPage(res: ServerResponse): void {
  const body = Buffer.from('404 page not found\n');
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length });
  res.end(body);
}
