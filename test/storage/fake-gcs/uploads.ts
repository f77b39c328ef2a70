/**
 * The fake's upload endpoints (POST /upload/storage/v1/b/BUCKET/o), after Cloud Storage's JSON API
 * documents: uploadType=media (the body is the object), multipart (multipart/related: JSON
 * metadata, then the bytes; md5Hash/crc32c in the metadata are checked), and resumable: the POST
 * answers a session URI (Location); PUTs to it carry `Content-Range: bytes A-B/TOTAL|*`, are kept
 * in whole 256 KiB units unless they complete the object, and are answered 308 Resume Incomplete
 * with `Range: bytes=0-N` (no Range when nothing is kept); `bytes * /TOTAL|*` with no body asks
 * for the status or completes; bytes already received are skipped, a gap is refused; the completing
 * PUT answers 200 with the object; DELETE cancels (499), and a cancelled session is gone (410).
 * Session URIs authenticate by themselves, so those PUTs need no token.
 */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashMismatch, type FakeStore, type UploadSession } from './store.js';
import { objectResource, readBody, sendError, sendJSON, TooLarge } from './http.js';

export const QUANTUM = 256 * 1024;
const MULTIPART_LIMIT = 64 * 1024 * 1024;

/** Faults a test can ask for, each for a number of requests. */
export interface Faults {
  /** Non-final chunks that keep one 256 KiB unit less than they carried (the protocol allows it). */
  shortChunks: number;
  /** Non-final chunks whose bytes are kept but whose answer is a 503 (a lost answer). */
  lostAnswers: number;
}

export interface UploadContext {
  store: FakeStore;
  faults: Faults;
  origin(req: IncomingMessage): string;
}

function strings(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

function parseJSON(buf: Buffer): Record<string, unknown> | null {
  if (buf.length === 0) return {};
  try {
    const v = JSON.parse(buf.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

/** The two parts of a multipart/related body: metadata JSON, then the media. */
function splitMultipart(contentType: string, body: Buffer): { meta: Buffer; media: Buffer } | null {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!/^multipart\/related/i.test(contentType) || !m) return null;
  const delimiter = Buffer.from(`--${m[1]}`);
  const parts: Buffer[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) return null;
    const part = body.subarray(start, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0) return null;
    const content = part.subarray(headerEnd + 4);
    parts.push(content.subarray(0, content.length >= 2 && content.subarray(-2).toString() === '\r\n' ? content.length - 2 : content.length));
    at = next;
  }
  return parts.length === 2 ? { meta: parts[0], media: parts[1] } : null;
}

/** POST /upload/storage/v1/b/BUCKET/o (the caller checked the token and the bucket). */
export async function startUpload(ctx: UploadContext, req: IncomingMessage, res: ServerResponse, bucket: string, query: URLSearchParams): Promise<void> {
  const type = query.get('uploadType');
  if (type === 'resumable') {
    const meta = parseJSON(await readBody(req, 1 << 20));
    if (!meta) return sendError(res, 400, 'Metadata part is not valid JSON.');
    const name = query.get('name') ?? (typeof meta.name === 'string' ? meta.name : '');
    if (!name) return sendError(res, 400, 'Required object name is missing.');
    const contentType = (typeof meta.contentType === 'string' && meta.contentType) || String(req.headers['x-upload-content-type'] ?? '') || 'application/octet-stream';
    const session = ctx.store.startSession(bucket, name, contentType, strings(meta.metadata));
    const location = `${ctx.origin(req)}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${session.id}`;
    res.writeHead(200, { location, 'content-length': 0 });
    res.end();
    return;
  }
  const file = ctx.store.newFile();
  let name = query.get('name') ?? '';
  let attrs: { contentType?: string; metadata?: Record<string, string> } = { contentType: String(req.headers['content-type'] ?? '') };
  let expect: { md5Hash?: string; crc32c?: string } = {};
  if (type === 'multipart') {
    let body: Buffer;
    try {
      body = await readBody(req, MULTIPART_LIMIT);
    } catch (err) {
      if (err instanceof TooLarge) return sendError(res, 413, 'Multipart uploads are limited in this fake; use a resumable upload.');
      throw err;
    }
    const parts = splitMultipart(String(req.headers['content-type'] ?? ''), body);
    const meta = parts && parseJSON(parts.meta);
    if (!parts || !meta) return sendError(res, 400, 'Malformed multipart body.');
    if (!name && typeof meta.name === 'string') name = meta.name;
    attrs = { contentType: typeof meta.contentType === 'string' ? meta.contentType : undefined, metadata: strings(meta.metadata) };
    expect = { md5Hash: typeof meta.md5Hash === 'string' ? meta.md5Hash : undefined, crc32c: typeof meta.crc32c === 'string' ? meta.crc32c : undefined };
    fs.writeFileSync(file, parts.media);
  } else if (type === 'media') {
    await pipeline(req, fs.createWriteStream(file));
  } else {
    return sendError(res, 400, `Unsupported uploadType ${type}.`);
  }
  if (!name) {
    fs.rmSync(file, { force: true });
    return sendError(res, 400, 'Required object name is missing.');
  }
  try {
    sendJSON(res, 200, objectResource(await ctx.store.commit(bucket, name, file, attrs, expect), ctx.origin(req)));
  } catch (err) {
    if (err instanceof HashMismatch) return sendError(res, 400, err.message);
    throw err;
  }
}

/** Drops the first `skip` bytes (already received), counts what passes. */
class SkipFirst extends Transform {
  seen = 0;
  constructor(private skip: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.seen += chunk.length;
    if (this.skip >= chunk.length) {
      this.skip -= chunk.length;
      return done();
    }
    const rest = chunk.subarray(this.skip);
    this.skip = 0;
    done(null, rest);
  }
}

async function drain(req: IncomingMessage): Promise<number> {
  let n = 0;
  for await (const c of req) n += (c as Buffer).length;
  return n;
}

function incomplete(res: ServerResponse, s: UploadSession): void {
  res.writeHead(308, { ...(s.persisted > 0 ? { range: `bytes=0-${s.persisted - 1}` } : {}), 'content-length': 0 });
  res.end();
}

async function complete(ctx: UploadContext, req: IncomingMessage, res: ServerResponse, s: UploadSession): Promise<void> {
  s.result = await ctx.store.commit(s.bucket, s.name, s.file, { contentType: s.contentType, metadata: s.metadata });
  s.state = 'done';
  sendJSON(res, 200, objectResource(s.result, ctx.origin(req)));
}

const locks = new WeakMap<UploadSession, Promise<void>>();

/** PUT or DELETE on a session URI. */
export function sessionRequest(ctx: UploadContext, req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
  const s = ctx.store.sessions.get(id);
  if (!s) return drain(req).then(() => sendError(res, 404, 'No such upload session.'));
  // One request at a time per session, as its bytes must stay in order.
  const run = (locks.get(s) ?? Promise.resolve()).then(() => sessionRequestLocked(ctx, req, res, s));
  locks.set(s, run.catch(() => undefined));
  return run;
}

async function sessionRequestLocked(ctx: UploadContext, req: IncomingMessage, res: ServerResponse, s: UploadSession): Promise<void> {
  if (req.method === 'DELETE') {
    await drain(req);
    if (s.state === 'active') {
      s.state = 'cancelled';
      fs.rmSync(s.file, { force: true });
    }
    res.writeHead(499, { 'content-length': 0 });
    res.end();
    return;
  }
  if (req.method !== 'PUT') return drain(req).then(() => sendError(res, 400, `${req.method} on an upload session`));
  if (s.state === 'cancelled') return drain(req).then(() => sendError(res, 410, 'The upload session was cancelled.'));
  if (s.state === 'done') return drain(req).then(() => sendJSON(res, 200, objectResource(s.result!, ctx.origin(req))));

  const length = Number(req.headers['content-length'] ?? '0');
  const range = String(req.headers['content-range'] ?? (length > 0 ? `bytes 0-${length - 1}/${length}` : 'bytes */0'));
  const query = /^bytes \*\/(\d+|\*)$/.exec(range);
  const chunk = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(range);
  if (query) {
    if ((await drain(req)) > 0) return sendError(res, 400, 'A status request has no body.');
    if (query[1] === '*') return incomplete(res, s);
    const total = Number(query[1]);
    if (total < s.persisted) return sendError(res, 400, `The total ${total} is below the ${s.persisted} bytes received.`);
    if (total === s.persisted) return complete(ctx, req, res, s);
    return incomplete(res, s);
  }
  if (!chunk) return drain(req).then(() => sendError(res, 400, `Failed to parse Content-Range header: ${range}`));
  const first = Number(chunk[1]);
  const last = Number(chunk[2]);
  const total = chunk[3] === '*' ? null : Number(chunk[3]);
  if (last < first || (total !== null && last >= total)) return drain(req).then(() => sendError(res, 400, `Invalid Content-Range ${range}`));
  if (first > s.persisted) {
    return drain(req).then(() => sendError(res, 400, `Invalid request: the chunk starts at ${first} but the session holds ${s.persisted} bytes.`));
  }
  const skipper = new SkipFirst(s.persisted - first);
  await pipeline(req, skipper, fs.createWriteStream(s.file, { flags: 'a' }));
  if (skipper.seen !== last - first + 1) {
    fs.truncateSync(s.file, s.persisted);
    return sendError(res, 400, `The body has ${skipper.seen} bytes but Content-Range says ${last - first + 1}.`);
  }
  const end = last + 1;
  if (total !== null && end === total) return complete(ctx, req, res, s);
  let keep = Math.max(s.persisted, end - (end % QUANTUM));
  if (ctx.faults.shortChunks > 0 && keep - s.persisted >= 2 * QUANTUM) {
    ctx.faults.shortChunks--;
    keep -= QUANTUM;
  }
  fs.truncateSync(s.file, keep);
  s.persisted = keep;
  if (ctx.faults.lostAnswers > 0) {
    ctx.faults.lostAnswers--;
    return sendError(res, 503, 'Backend Error (an answer lost on purpose by the test).');
  }
  incomplete(res, s);
}
