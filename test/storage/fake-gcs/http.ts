/** HTTP pieces of the fake Cloud Storage server: JSON answers and errors, bodies, object resources, media with ranges. */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { StoredObject } from './store.js';

const REASONS: Record<number, string> = {
  400: 'invalid',
  401: 'required',
  403: 'forbidden',
  404: 'notFound',
  412: 'conditionNotMet',
  413: 'uploadTooLarge',
  416: 'requestedRangeNotSatisfiable',
  501: 'notImplemented',
  503: 'backendError',
};

export function sendJSON(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The JSON API's error shape: {error: {code, message, errors: [{domain, reason, message}]}}. */
export function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const www: Record<string, string> = status === 401 ? { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' } : {};
  sendJSON(res, status, { error: { code: status, message, errors: [{ message, domain: 'global', reason: REASONS[status] ?? 'error' }] } }, { ...www, ...headers });
}

/** The XML API's error shape, for signed-URL requests. */
export function sendXMLError(res: ServerResponse, status: number, code: string, message: string): void {
  const text = `<?xml version='1.0' encoding='UTF-8'?><Error><Code>${code}</Code><Message>${message.replace(/[<&]/g, (c) => (c === '<' ? '&lt;' : '&amp;'))}</Message></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A small body, whole (token forms, JSON metadata, multipart uploads); over `limit` rejects. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) throw new TooLarge(`body over ${limit} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks, n);
}

export class TooLarge extends Error {}

/** The JSON API's object resource. */
export function objectResource(o: StoredObject, origin: string): Record<string, unknown> {
  const id = `${o.bucket}/${o.name}/${o.generation}`;
  const self = `${origin}/storage/v1/b/${encodeURIComponent(o.bucket)}/o/${encodeURIComponent(o.name)}`;
  return {
    kind: 'storage#object',
    id,
    selfLink: self,
    mediaLink: `${origin}/download/storage/v1/b/${encodeURIComponent(o.bucket)}/o/${encodeURIComponent(o.name)}?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket: o.bucket,
    generation: o.generation,
    metageneration: String(o.metageneration),
    contentType: o.contentType,
    storageClass: 'STANDARD',
    size: String(o.size),
    md5Hash: o.md5Hash,
    crc32c: o.crc32c,
    etag: Buffer.from(`${o.generation}/${o.metageneration}`).toString('base64'),
    timeCreated: o.timeCreated,
    updated: o.updated,
    timeStorageClassUpdated: o.timeCreated,
    ...(Object.keys(o.metadata).length > 0 ? { metadata: o.metadata } : {}),
  };
}

/** One byte range of `size` bytes from a Range header: null for none (or one we ignore), 'unsatisfiable', or [first, last]. */
export function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // several ranges or garbage: the whole object, as RFC 9110 allows
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return [Math.max(0, size - n), size - 1];
  }
  const first = Number(m[1]);
  const last = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (first >= size || (m[2] !== '' && Number(m[2]) < first)) return 'unsatisfiable';
  return [first, last];
}

/**
 * Stream an object's bytes (GET) or only its headers (HEAD), honouring one Range. Call it right
 * after looking the object up: its file is opened before anything else can replace the version.
 */
export async function sendMedia(req: IncomingMessage, res: ServerResponse, o: StoredObject, onUnsatisfiable: () => void): Promise<void> {
  const fd = fs.openSync(o.file, 'r');
  const range = parseRange(req.headers.range, o.size);
  if (range === 'unsatisfiable') {
    fs.closeSync(fd);
    onUnsatisfiable();
    return;
  }
  const [first, last] = range ?? [0, o.size - 1];
  const length = o.size === 0 ? 0 : last - first + 1;
  const headers: Record<string, string | number> = {
    'content-type': o.contentType,
    'content-length': length,
    'accept-ranges': 'bytes',
    etag: `"${o.md5Hash}"`,
    'last-modified': new Date(o.updated).toUTCString(),
    'x-goog-generation': o.generation,
    'x-goog-metageneration': String(o.metageneration),
    'x-goog-stored-content-length': String(o.size),
    'x-goog-stored-content-encoding': 'identity',
    'x-goog-hash': `crc32c=${o.crc32c},md5=${o.md5Hash}`,
  };
  if (range) headers['content-range'] = `bytes ${first}-${last}/${o.size}`;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD' || length === 0) {
    fs.closeSync(fd);
    res.end();
    return;
  }
  // The open file stays readable even if a newer version replaces this one meanwhile.
  await pipeline(fs.createReadStream('', { fd, start: first, end: last, highWaterMark: 256 * 1024 }), res);
}
