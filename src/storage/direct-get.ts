// A large object's bytes straight from the object store's socket to the client's (raw-get.ts says
// why not through Node's HTTP client): the borrowed reads are copied into pooled 1 MiB writes.
// Presigned GET URLs only (nothing to sign per request here), of a known length; anything else
// the store answers goes back to the driver's SDK path before a byte is sent: `fallback`.

import type { Writable } from 'node:stream';
import { rawGet, type RawResponse } from './raw-get.js';

const WRITE_BATCH = 1024 * 1024;
const POOL_MAX = 8;
const RESPONSE_TIMEOUT_MS = 60_000;
const IDLE_TIMEOUT_MS = 60_000;

const writePool: Buffer[] = [];
const take = (): Buffer => writePool.pop() ?? Buffer.allocUnsafeSlow(WRITE_BATCH);
const give = (b: Buffer): void => {
  if (writePool.length < POOL_MAX) writePool.push(b);
};

export interface DirectGetOptions {
  /** Verify the store's TLS certificate (false for s3 `skipverify`). */
  rejectUnauthorized?: boolean;
  userAgent?: string;
}

const prematureClose = (): Error => Object.assign(new Error('destination closed'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });

/**
 * GET `url` with `Range: bytes=offset-(offset+length-1)` and stream exactly `length` bytes into
 * `destination`, then end it. Resolves `fallback` when nothing was written and the caller should
 * use its ordinary path (the store answered anything but 200/206 with that length, or could not
 * be reached); rejects once bytes have gone out and the transfer broke, leaving `destination` unended.
 */
export async function sendDirect(url: URL, offset: number, length: number, destination: Writable, options: DirectGetOptions = {}): Promise<'sent' | 'fallback'> {
  const headers: Record<string, string> = { Range: `bytes=${offset}-${offset + length - 1}` };
  if (options.userAgent) headers['User-Agent'] = options.userAgent;
  let res: RawResponse;
  try {
    res = await rawGet(url, { headers, rejectUnauthorized: options.rejectUnauthorized, responseTimeoutMs: RESPONSE_TIMEOUT_MS, idleTimeoutMs: IDLE_TIMEOUT_MS });
  } catch {
    return 'fallback';
  }
  // A 200 for a range that does not start at 0 means the store ignored it.
  if (!(res.status === 206 || (res.status === 200 && offset === 0)) || res.length !== length) {
    res.destroy();
    return 'fallback';
  }

  let filling = take();
  let fill = 0;
  let broken: Error | null = null;
  let wakeOnDrain: { resolve(): void; reject(err: Error): void } | null = null;
  const onClose = (): void => {
    broken ??= prematureClose();
    wakeOnDrain?.reject(broken);
  };
  const onDrain = (): void => wakeOnDrain?.resolve();
  destination.on('close', onClose);
  destination.on('drain', onDrain);

  /** Hand the filled batch over; false when the destination wants a pause until 'drain'. */
  const flush = (): boolean => {
    const buffer = filling;
    const more = destination.write(fill === buffer.length ? buffer : buffer.subarray(0, fill), (err) => {
      if (err) broken ??= err;
      else give(buffer);
    });
    filling = take();
    fill = 0;
    return more;
  };

  try {
    await res.pump((chunk) => {
      if (broken) throw broken;
      let more = true;
      // The chunk is borrowed until this returns (or its promise settles): copy all of it first.
      for (let off = 0; off < chunk.length; ) {
        const n = chunk.copy(filling, fill, off);
        fill += n;
        off += n;
        if (fill === filling.length) more = flush() && more;
      }
      if (more) return undefined;
      // 'drain' is never emitted synchronously by write(): waiting from here cannot miss it.
      return new Promise<void>((resolve, reject) => (wakeOnDrain = { resolve, reject })).finally(() => (wakeOnDrain = null));
    });
    if (fill > 0) flush();
    else give(filling);
    if (broken) throw broken;
    destination.off('close', onClose);
    // A destination closed before it finished never calls end's callback: 'close' settles it.
    await new Promise<void>((resolve, reject) => {
      const closed = (): void => (destination.writableFinished ? resolve() : reject(prematureClose()));
      destination.once('close', closed);
      destination.end(() => {
        destination.off('close', closed);
        resolve();
      });
    });
    return 'sent';
  } catch (err) {
    res.destroy();
    throw err;
  } finally {
    destination.off('close', onClose);
    destination.off('drain', onDrain);
  }
}
