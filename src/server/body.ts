/** Request-body helpers: bounded reads for small documents, header parsing for ranges. */
import type { IncomingMessage } from 'node:http';
import { fail, type ErrorCode } from '../registry/errors.js';

/** Read a small body whole; larger than `limit` → the given error with 413. */
export async function readBounded(req: IncomingMessage, limit: number, code: ErrorCode, what: string): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) fail(code, `${what} is larger than ${limit} bytes`, { limit }, 413);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) fail(code, `${what} is larger than ${limit} bytes`, { limit }, 413);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

/** Content-Range of an upload chunk: "<start>-<end>" (Distribution's form; "bytes " and "bytes=" tolerated). */
export function parseContentRange(value: string): { start: number; end: number } | null {
  const m = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(value.trim());
  if (!m) return null;
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return null;
  return { start, end };
}

/**
 * A single byte range of a `size`-byte entity: "bytes=a-b", "bytes=a-", "bytes=-n".
 * Returns null when the header is absent or not a single range we serve (→ 200 full),
 * 'unsatisfiable' for 416.
 */
export function parseRange(value: string | undefined, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  if (!value) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m || (m[1] === '' && m[2] === '')) {
    return /^bytes=/.test(value.trim()) && !value.includes(',') ? 'unsatisfiable' : null;
  }
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  let end = m[2] === '' ? size - 1 : Number(m[2]);
  if (start >= size || (m[2] !== '' && end < start)) return 'unsatisfiable';
  if (end >= size) end = size - 1;
  return { start, end };
}
