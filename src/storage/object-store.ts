/**
 * Pieces the object-store drivers (s3, oss, azure, gcs, swift) share: checking a reader's
 * arguments, shaping listings and walks, deciding on redirects, running requests a few at a
 * time, reading and serving bodies. Their writers' pieces are in object-writer.ts.
 */
import { Readable, type Writable } from 'node:stream';
import { checkPath, InvalidOffsetError, PathNotFoundError, type FileInfo } from './driver.js';

/** Remove and return the first `n` bytes of `chunks` (which hold at least `n`), in one Buffer. */
export function takeFront(chunks: Buffer[], n: number): Buffer {
  if (chunks.length === 1 && chunks[0]!.length === n) return chunks.shift()!;
  const out = Buffer.allocUnsafe(n);
  let filled = 0;
  while (filled < n) {
    const head = chunks[0]!;
    const want = n - filled;
    if (head.length <= want) {
      head.copy(out, filled);
      filled += head.length;
      chunks.shift();
    } else {
      head.copy(out, filled, 0, want);
      chunks[0] = head.subarray(want);
      filled += want;
    }
  }
  return out;
}

/**
 * A directory listing from the objects found under a prefix: files, plus the virtual
 * directories their names imply, sorted; nothing under a path other than the root is a
 * missing path, as the driver contract says.
 */
export function listingOf(driver: string, path: string, base: string, files: Map<string, FileInfo>, dirs: Set<string>): FileInfo[] {
  const out: FileInfo[] = [...files.values()];
  for (const name of dirs) if (!files.has(name)) out.push({ path: `${base}/${name}`, size: 0, modTime: new Date(), isDir: true });
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (out.length === 0 && path !== '/') throw new PathNotFoundError(driver, path);
  return out;
}

/** Bytes gathered before each write to the client: 16x fewer writes than the 64 KiB socket chunks. */
const SEND_BATCH = 1024 * 1024;
const sendPool: Buffer[] = [];
const SEND_POOL_MAX = 16;

/**
 * Copy an object's body (a response from the store) into `destination` in 1 MiB writes and end
 * it. Passing the store's 64 KiB chunks on one by one costs a write and its bookkeeping each,
 * which doubled the CPU per byte of a pull next to Distribution. Two pooled buffers: one fills
 * while the other is written; reading waits while both are busy (backpressure both ways).
 */
export async function sendCoalesced(source: Readable, destination: Writable): Promise<void> {
  let closed = false;
  let rejectPending: ((err: Error) => void) | null = null;
  const gone = (): Error => Object.assign(new Error('destination closed'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
  const markClosed = (): void => {
    closed = true;
    rejectPending?.(gone());
  };
  destination.once('close', markClosed);
  // A destroyed socket may never call back: 'close' settles the pending write instead.
  // The write in flight may fail while nobody awaits it (the loop is reading): mark it handled.
  const write = (buf: Buffer): Promise<void> => {
    const p = new Promise<void>((resolve, reject) => {
      rejectPending = reject;
      destination.write(buf, (err) => {
        rejectPending = null;
        if (err) reject(err);
        else resolve();
      });
    });
    p.catch(() => undefined);
    return p;
  };
  let filling = sendPool.pop() ?? Buffer.allocUnsafeSlow(SEND_BATCH);
  let spare: Buffer | null = sendPool.pop() ?? Buffer.allocUnsafeSlow(SEND_BATCH);
  let inflight: Promise<void> | null = null;
  let inflightBuffer: Buffer | null = null;
  let fill = 0;
  const flush = async (): Promise<void> => {
    if (inflight) {
      await inflight;
      spare = inflightBuffer;
    }
    inflightBuffer = filling;
    inflight = write(fill === filling.length ? filling : filling.subarray(0, fill));
    filling = spare!;
    spare = null;
    fill = 0;
  };
  let clean = false;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (closed) throw gone();
      for (let off = 0; off < chunk.length; ) {
        const n = chunk.copy(filling, fill, off);
        fill += n;
        off += n;
        if (fill === filling.length) await flush();
      }
    }
    if (fill > 0) await flush();
    if (inflight) await inflight;
    inflight = null;
    spare = inflightBuffer;
    if (closed) throw gone();
    await new Promise<void>((resolve, reject) => {
      destination.once('error', reject);
      destination.end(() => {
        destination.off('error', reject);
        resolve();
      });
    });
    clean = true;
  } finally {
    destination.off('close', markClosed);
    // A buffer still queued on a destroyed socket is not returned: the pool just allocates anew.
    for (const b of clean || !inflight ? [filling, spare, inflightBuffer] : [filling, spare]) {
      if (b && sendPool.length < SEND_POOL_MAX && !sendPool.includes(b)) sendPool.push(b);
    }
  }
}

/** The checks every driver's `reader` makes first: the path, then a whole length and offset, neither negative. */
export function checkReadArgs(driver: string, path: string, offset: number, length: number | undefined): void {
  checkPath(driver, path);
  if (length !== undefined && !(Number.isSafeInteger(length) && length >= 0)) {
    throw new RangeError(`${driver}: invalid length ${length} for ${path}`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidOffsetError(driver, path, offset);
}

/** The HTTP Range of `length` bytes (or the rest) from `offset`; undefined for the whole object. */
export function byteRange(offset: number, length: number | undefined): string | undefined {
  return offset === 0 && length === undefined ? undefined : `bytes=${offset}-${length === undefined ? '' : offset + length - 1}`;
}

/** An empty byte stream: a read that starts at the end of a file. */
export function emptyStream(): Readable {
  return Readable.from([], { objectMode: false });
}

/** The methods a signed redirect URL serves (a URL signed for GET answers HEAD too on these stores). */
const READ_METHODS: readonly string[] = ['GET', 'HEAD'];

/**
 * Whether `redirectURL` signs a URL: the path is checked first (as every method does), then
 * redirects must be on (no `storage.redirect.disable`) and the method one the store's URLs serve.
 */
export function redirectable(driver: string, path: string, enabled: boolean, method: string, methods = READ_METHODS): boolean {
  checkPath(driver, path);
  return enabled && methods.includes(method);
}

/**
 * `walk` over a driver's listing: depth first in the listing's (sorted) order, not descending
 * where `visit` says 'skip'; a directory removed while being walked is passed over.
 */
export async function walkListing(
  driver: string,
  path: string,
  entries: (dir: string) => Promise<FileInfo[]>,
  visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip',
): Promise<void> {
  checkPath(driver, path, true);
  for (const info of await entries(path)) {
    const verdict = await visit(info);
    if (info.isDir && verdict !== 'skip') {
      try {
        await walkListing(driver, info.path, entries, visit);
      } catch (err) {
        if (!(err instanceof PathNotFoundError && err.path === info.path)) throw err; // removed while walking
      }
    }
  }
}

/** Run `work` on every item (with its index), at most `limit` at a time. */
export async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A stream's bytes in one Buffer; past `limit` bytes the stream is destroyed and `tooLong()` thrown. */
export async function readStream(stream: Readable, limit = Number.MAX_SAFE_INTEGER, tooLong = (): Error => new Error(`more than ${limit} bytes`)): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > limit) {
      stream.destroy();
      throw tooLong();
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks, n);
}

/**
 * Read a file whose bytes may still be in an unfinished upload: when `read` finds no object,
 * `complete` turns the upload into it (false: there is none) and the read is tried once more.
 */
export async function readCompleting<T>(
  driver: string,
  path: string,
  read: () => Promise<T>,
  isMissing: (err: unknown) => boolean,
  complete: () => Promise<boolean>,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (!isMissing(err)) throw err;
      if (attempt > 0 || !(await complete())) throw new PathNotFoundError(driver, path);
    }
  }
}
