/**
 * Whether an error means the storage backend could not be reached or is overloaded (the
 * connection was refused or dropped, a request timed out, the store answered 502/503/504),
 * as opposed to a bad request or a bug. Clients see 503 UNAVAILABLE for these and may retry;
 * anything else stays a 500. SDKs wrap network errors differently, so look through `cause`
 * chains and AggregateErrors.
 */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'REQUEST_SEND_ERROR', // @azure/core-rest-pipeline
]);
const UNAVAILABLE_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'ServiceUnavailable', 'SlowDown', 'InternalError']);
const UNAVAILABLE_STATUS = new Set([502, 503, 504]);

export function isBackendUnavailable(err: unknown, depth = 0): boolean {
  if (depth > 5 || typeof err !== 'object' || err === null) return false;
  const e = err as {
    code?: unknown;
    name?: unknown;
    statusCode?: unknown;
    status?: unknown;
    $metadata?: { httpStatusCode?: unknown };
    cause?: unknown;
    errors?: unknown;
  };
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (typeof e.name === 'string' && UNAVAILABLE_NAMES.has(e.name)) return true;
  for (const s of [e.$metadata?.httpStatusCode, e.statusCode]) if (typeof s === 'number' && UNAVAILABLE_STATUS.has(s)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isBackendUnavailable(x, depth + 1))) return true;
  return isBackendUnavailable(e.cause, depth + 1);
}
