/**
 * Cloud Storage resumable upload sessions over plain HTTP, as Distribution's gcs writer drives
 * them: a POST with uploadType=resumable returns the session URI (Location); each PUT carries
 * `Content-Range: bytes FIRST-LAST/*` (a multiple of 256 KiB) and is answered 308 Resume
 * Incomplete with `Range: bytes=0-N` (what the store persisted, possibly less than was sent);
 * the last PUT names the total (`bytes FIRST-LAST/TOTAL`, or `bytes * /TOTAL` with no body) and
 * is answered 200/201 with the object; `bytes * /*` with no body asks how far the session got;
 * DELETE cancels it. The session URI authenticates uploads by itself, so no token is sent with
 * them. A failed PUT (network, 429, 5xx) is retried from what the store says it persisted.
 */
import { StorageError } from './driver.js';

const SESSION_CONTENT_TYPE = 'application/octet-stream';
const MAX_ATTEMPTS = 5;
const FIRST_BACKOFF_MS = 250;
const CHUNK_TIMEOUT_MS = 300_000;
const SMALL_TIMEOUT_MS = 60_000;

export interface SessionContext {
  /** The driver's name, for errors. */
  readonly name: string;
  readonly bucket: string;
  /** https://storage.googleapis.com, or STORAGE_EMULATOR_HOST. */
  readonly apiEndpoint: string;
  readonly userAgent: string;
  /** Authorization for starting a session (none when the store needs none). */
  authHeaders(): Promise<Record<string, string>>;
}

export type SessionStatus = { state: 'active'; persisted: number } | { state: 'done' } | { state: 'gone'; status: number };

class RetryableError extends Error {}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The end (exclusive) of `Range: bytes=0-N`, 0 when the header is absent (nothing persisted yet). */
function persistedOf(res: Response): number {
  const range = res.headers.get('range');
  if (range === null) return 0;
  const m = /^bytes=0-(\d+)$/.exec(range.trim());
  if (!m) throw new Error(`unexpected Range header in a resumable upload answer: ${range}`);
  return Number(m[1]) + 1;
}

async function describe(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const message = (JSON.parse(text) as { error?: { message?: string } }).error?.message;
    if (message) return `${res.status} ${message}`;
  } catch {
    // not JSON
  }
  return `${res.status} ${text.slice(0, 200)}`.trim();
}

async function send(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  try {
    const res = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    if (res.status === 429 || res.status >= 500) throw new RetryableError(await describe(res));
    return res;
  } catch (err) {
    if (err instanceof RetryableError) throw err;
    throw new RetryableError((err as Error).message); // network failure or timeout
  }
}

/** Start a session for `objectName`; the object appears only when the session completes. */
export async function createSession(ctx: SessionContext, objectName: string, path: string): Promise<string> {
  const url = `${ctx.apiEndpoint}/upload/storage/v1/b/${encodeURIComponent(ctx.bucket)}/o?uploadType=resumable&name=${encodeURIComponent(objectName)}`;
  let last: unknown;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(FIRST_BACKOFF_MS * 2 ** (attempt - 1));
    try {
      const res = await send(
        url,
        {
          method: 'POST',
          headers: {
            ...(await ctx.authHeaders()),
            'content-type': 'application/json; charset=UTF-8',
            'x-upload-content-type': SESSION_CONTENT_TYPE,
            'user-agent': ctx.userAgent,
          },
          body: JSON.stringify({ name: objectName, contentType: SESSION_CONTENT_TYPE }),
        },
        SMALL_TIMEOUT_MS,
      );
      const location = res.headers.get('location');
      if (res.ok && location) {
        await res.arrayBuffer();
        return location;
      }
      throw new StorageError(`${ctx.name}: cannot start an upload session for ${path}: ${await describe(res)}`, ctx.name, path);
    } catch (err) {
      if (!(err instanceof RetryableError)) throw err;
      last = err;
    }
  }
  throw new StorageError(`${ctx.name}: cannot start an upload session for ${path}: ${(last as Error).message}`, ctx.name, path);
}

/** How far a session got. */
export async function queryStatus(ctx: SessionContext, uri: string, path: string): Promise<SessionStatus> {
  let last: unknown;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(FIRST_BACKOFF_MS * 2 ** (attempt - 1));
    try {
      const res = await send(uri, { method: 'PUT', headers: { 'content-range': 'bytes */*', 'user-agent': ctx.userAgent }, body: new Uint8Array(0) }, SMALL_TIMEOUT_MS);
      const status = await interpret(ctx, res, path);
      if (status) return status;
    } catch (err) {
      if (!(err instanceof RetryableError)) throw err;
      last = err;
    }
  }
  throw new StorageError(`${ctx.name}: cannot query the upload session of ${path}: ${(last as Error).message}`, ctx.name, path);
}

async function interpret(ctx: SessionContext, res: Response, path: string): Promise<SessionStatus> {
  if (res.status === 308) {
    await res.arrayBuffer();
    return { state: 'active', persisted: persistedOf(res) };
  }
  if (res.status === 200 || res.status === 201) {
    await res.arrayBuffer();
    return { state: 'done' };
  }
  if (res.status === 404 || res.status === 410 || res.status === 499) {
    await res.arrayBuffer();
    return { state: 'gone', status: res.status };
  }
  throw new StorageError(`${ctx.name}: the upload session of ${path} answered ${await describe(res)}`, ctx.name, path);
}

/**
 * Send `body`, the bytes from offset `start`, into the session; `total` (the object's size) makes
 * it the last chunk. Resolves once the store persisted all of it (or completed the object).
 */
export async function uploadChunk(ctx: SessionContext, uri: string, body: Buffer, start: number, total: number | null, path: string): Promise<void> {
  const end = start + body.length;
  let at = start;
  let failures = 0;
  for (;;) {
    const piece = body.subarray(at - start);
    const range = piece.length === 0 ? `bytes */${total ?? '*'}` : `bytes ${at}-${end - 1}/${total ?? '*'}`;
    let status: SessionStatus;
    try {
      const res = await send(
        uri,
        { method: 'PUT', headers: { 'content-range': range, 'content-type': SESSION_CONTENT_TYPE, 'user-agent': ctx.userAgent }, body: piece },
        CHUNK_TIMEOUT_MS,
      );
      status = await interpret(ctx, res, path);
    } catch (err) {
      if (!(err instanceof RetryableError)) throw err;
      if (++failures >= MAX_ATTEMPTS) throw new StorageError(`${ctx.name}: uploading to ${path} failed ${failures} times: ${err.message}`, ctx.name, path);
      await sleep(FIRST_BACKOFF_MS * 2 ** (failures - 1));
      status = await queryStatus(ctx, uri, path);
    }
    if (status.state === 'gone') {
      throw new StorageError(`${ctx.name}: the upload session of ${path} expired or was cancelled (${status.status})`, ctx.name, path);
    }
    if (status.state === 'done') {
      if (total !== null) return;
      throw new StorageError(`${ctx.name}: the upload session of ${path} completed before its last chunk`, ctx.name, path);
    }
    if (status.persisted < start || status.persisted > end) {
      throw new StorageError(`${ctx.name}: the upload session of ${path} holds ${status.persisted} bytes, expected ${start} to ${end}`, ctx.name, path);
    }
    if (status.persisted === end && total === null) return;
    // The store kept less than was sent (allowed by the protocol): send the rest. No progress counts as a failure.
    if (status.persisted <= at && ++failures >= MAX_ATTEMPTS) {
      throw new StorageError(`${ctx.name}: the upload session of ${path} keeps no more bytes (stuck at ${status.persisted})`, ctx.name, path);
    }
    at = status.persisted;
  }
}

/** Cancel a session (its bytes are dropped); one that is already gone is fine. */
export async function cancelSession(ctx: SessionContext, uri: string): Promise<void> {
  try {
    const res = await fetch(uri, { method: 'DELETE', headers: { 'user-agent': ctx.userAgent }, redirect: 'manual', signal: AbortSignal.timeout(SMALL_TIMEOUT_MS) });
    await res.arrayBuffer();
  } catch {
    // An abandoned session expires after a week on its own.
  }
}
