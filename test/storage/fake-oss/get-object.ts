/**
 * GetObject and HeadObject of the fake OSS server, with OSS's Range rules (its reference's table
 * for a 1,000-byte object): a valid range answers 206 with Content-Range; a range that ends past
 * the object, or is malformed, is ignored (200, whole object), unless the request says
 * `x-oss-range-behavior: standard`, which clips the end instead; a range that starts at or past
 * the end is ignored too, or with standard behaviour refused with 416 InvalidRange.
 */
import { pipeline } from 'node:stream/promises';
import type { Context } from './server.js';
import { encryptionHeaders, OssError, type StoredObject } from './store.js';

type Span = { first: number; last: number } | 'whole' | 'unsatisfiable';

function span(range: string | undefined, size: number, standard: boolean): Span {
  if (range === undefined) return 'whole';
  const m = /^bytes=(\d*)-(\d*)(,.*)?$/.exec(range.trim()); // OSS serves only the first of several ranges
  if (!m || (m[1] === '' && m[2] === '')) return 'whole';
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return standard ? 'unsatisfiable' : 'whole';
    return { first: Math.max(0, size - n), last: size - 1 };
  }
  const first = Number(m[1]);
  let last = m[2] === '' ? size - 1 : Number(m[2]);
  if (m[2] !== '' && last < first) return 'whole';
  if (first >= size) return standard ? 'unsatisfiable' : 'whole';
  if (last >= size) {
    if (!standard) return 'whole';
    last = size - 1;
  }
  return { first, last };
}

function objectHeaders(c: Context, o: StoredObject): Record<string, string | number> {
  const headers: Record<string, string | number> = {
    'Content-Type': o.contentType,
    ETag: o.etag,
    'Last-Modified': o.lastModified.toUTCString(),
    'Accept-Ranges': 'bytes',
    'x-oss-object-type': o.type,
    'x-oss-storage-class': 'Standard',
    'x-oss-request-id': c.requestId,
    ...encryptionHeaders(o.encryption),
  };
  for (const [k, v] of Object.entries(o.meta)) headers[`x-oss-meta-${k}`] = v;
  return headers;
}

export async function readObject(c: Context): Promise<void> {
  const o = c.state.store.need(c.bucket, c.key);
  const headers = objectHeaders(c, o);
  if (c.req.method === 'HEAD') {
    c.res.writeHead(200, { ...headers, 'Content-Length': o.size });
    c.res.end();
    return;
  }
  const rangeHeader = c.req.headers.range;
  const standard = c.req.headers['x-oss-range-behavior'] === 'standard';
  const s = span(rangeHeader, o.size, standard);
  if (s === 'unsatisfiable') {
    throw new OssError(416, 'InvalidRange', 'The requested range cannot be satisfied.', { RangeRequested: rangeHeader ?? '', ActualObjectSize: String(o.size) });
  }
  const { first, last } = s === 'whole' ? { first: 0, last: o.size - 1 } : s;
  const body = c.state.store.read(o, first, last);
  if (s === 'whole') c.res.writeHead(200, { ...headers, 'Content-Length': o.size });
  else c.res.writeHead(206, { ...headers, 'Content-Length': last - first + 1, 'Content-Range': `bytes ${first}-${last}/${o.size}` });
  await pipeline(body, c.res);
}
