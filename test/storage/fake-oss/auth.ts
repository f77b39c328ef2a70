/**
 * Request signing as OSS's API reference describes it (signature version 1), checked the way the
 * service checks it:
 *
 *   Authorization: OSS <AccessKeyId>:<Signature>
 *   Signature = base64(hmac-sha1(AccessKeySecret, VERB "\n" Content-MD5 "\n" Content-Type "\n"
 *               Date "\n" CanonicalizedOSSHeaders CanonicalizedResource))
 *
 * CanonicalizedOSSHeaders: every x-oss-* header, name lowercased, value trimmed, sorted by name,
 * each as "name:value\n". CanonicalizedResource: "/<bucket>/<object>" (or "/<bucket>/"), then
 * the sub-resources present in the query (the reference's list below), sorted, joined by '&',
 * "name=value" or just "name" when empty. Date is the x-oss-date header when present, else Date;
 * it must be within 15 minutes of the server's clock.
 *
 * A signed URL carries OSSAccessKeyId, Expires (seconds since the epoch) and Signature in the
 * query; the string to sign has Expires in Date's place, and the URL is refused once Expires has
 * passed.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** The sub-resources OSS signs (its V1 reference), plus those the SDKs send as such. */
const SUB_RESOURCES = new Set([
  'acl', 'uploads', 'location', 'cors', 'logging', 'website', 'referer', 'lifecycle', 'delete', 'append', 'tagging',
  'objectMeta', 'uploadId', 'partNumber', 'security-token', 'position', 'img', 'style', 'styleName', 'replication',
  'replicationProgress', 'replicationLocation', 'cname', 'bucketInfo', 'comp', 'qos', 'live', 'status', 'vod',
  'startTime', 'endTime', 'symlink', 'x-oss-process', 'response-content-type', 'response-content-language',
  'response-expires', 'response-cache-control', 'response-content-disposition', 'response-content-encoding',
  'versionId', 'versioning', 'versions', 'restore', 'continuation-token',
]);

const MAX_SKEW_MS = 15 * 60_000;

export interface AuthFailure {
  status: number;
  code: string;
  message: string;
  extra?: Record<string, string>;
}

export interface SignedRequest {
  method: string;
  headers: IncomingHttpHeaders;
  query: URLSearchParams;
  bucket: string;
  key: string;
}

function header(headers: IncomingHttpHeaders, name: string): string {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : (v ?? '');
}

function canonicalHeaders(headers: IncomingHttpHeaders): string {
  return Object.keys(headers)
    .filter((n) => n.toLowerCase().startsWith('x-oss-'))
    .map((n) => n.toLowerCase())
    .sort()
    .map((n) => `${n}:${header(headers, n).trim()}\n`)
    .join('');
}

function canonicalResource(r: SignedRequest): string {
  const subs = [...new Set([...r.query.keys()].filter((k) => SUB_RESOURCES.has(k)))].sort();
  const query = subs.map((k) => (r.query.get(k) ? `${k}=${r.query.get(k)}` : k)).join('&');
  return `/${r.bucket}/${r.key}${query ? `?${query}` : ''}`;
}

function stringToSign(r: SignedRequest, date: string): string {
  return [r.method, header(r.headers, 'content-md5'), header(r.headers, 'content-type'), date, ''].join('\n') + canonicalHeaders(r.headers) + canonicalResource(r);
}

function sameSignature(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Null when the request is signed with a known key, else why not (OSS's codes). Requests
 * without any signature are refused too: the fake's buckets are private.
 */
export function checkSignature(r: SignedRequest, secrets: ReadonlyMap<string, string>, now: number): AuthFailure | null {
  const authorization = header(r.headers, 'authorization');
  const queryId = r.query.get('OSSAccessKeyId');
  let id: string;
  let signature: string;
  let date: string;
  if (authorization) {
    if (authorization.startsWith('OSS4-HMAC-SHA256')) {
      return { status: 403, code: 'AccessDenied', message: 'This fake OSS server checks V1 signatures only (OSS <AccessKeyId>:<Signature>).' };
    }
    const m = /^OSS ([^:]+):(.+)$/.exec(authorization);
    if (!m) return { status: 400, code: 'InvalidArgument', message: 'Authorization header is invalid.' };
    [, id, signature] = m as unknown as [string, string, string];
    date = header(r.headers, 'x-oss-date') || header(r.headers, 'date');
    const at = Date.parse(date);
    if (!date || Number.isNaN(at)) return { status: 403, code: 'AccessDenied', message: 'OSS authentication requires a valid Date.' };
    if (Math.abs(now - at) > MAX_SKEW_MS) {
      return { status: 403, code: 'RequestTimeTooSkewed', message: 'The difference between the request time and the current time is too large.' };
    }
  } else if (queryId) {
    id = queryId;
    signature = r.query.get('Signature') ?? '';
    date = r.query.get('Expires') ?? '';
    if (!/^\d+$/.test(date)) return { status: 403, code: 'AccessDenied', message: 'Expires must be a number of seconds since the epoch.' };
    if (Number(date) * 1000 < now) return { status: 403, code: 'AccessDenied', message: 'Request has expired.', extra: { Expires: date } };
  } else {
    return { status: 403, code: 'AccessDenied', message: 'You have no right to access this object because of bucket acl.' };
  }
  const secret = secrets.get(id);
  if (secret === undefined) return { status: 403, code: 'InvalidAccessKeyId', message: 'The OSS Access Key Id you provided does not exist in our records.', extra: { OSSAccessKeyId: id } };
  const toSign = stringToSign(r, date);
  const expected = createHmac('sha1', secret).update(toSign, 'utf8').digest('base64');
  if (!sameSignature(signature, expected)) {
    return {
      status: 403,
      code: 'SignatureDoesNotMatch',
      message: 'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      extra: { StringToSign: toSign, SignatureProvided: signature, OSSAccessKeyId: id },
    };
  }
  return null;
}
