/**
 * The filesystem driver: Distribution's `filesystem` layout under `rootdirectory`.
 * Small files are written to a sibling temp file and renamed into place, so readers see
 * the old bytes or the new, never a mix. Writers append in place (the upload's `data`),
 * which is what lets an upload resume after a restart.
 *
 * Temp files and trees being deleted carry a '~' in their name: no valid path can name them,
 * and `list`/`walk` hide every entry whose name is not a valid path segment.
 */
import { createReadStream, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import {
  checkPath,
  isValidSegment,
  InvalidOffsetError,
  PathNotFoundError,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
} from './driver.js';

const NAME = 'filesystem';
/** Writes are gathered into batches of this size: fewer syscalls, fewer thread-pool hops. */
const WRITE_BATCH = 1024 * 1024;
const READ_CHUNK = 1024 * 1024;

export interface FilesystemOptions {
  rootdirectory: string;
}

export function isENOENT(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}

/** The driver paths of `path`'s children named on disk; hidden entries (temp files, doomed trees) are left out. */
export function childPaths(path: string, names: string[]): string[] {
  const prefix = path === '/' ? '' : path;
  return names
    .filter(isValidSegment)
    .sort()
    .map((n) => `${prefix}/${n}`);
}

/** A failed readdir of `path`: the root not yet created lists as empty; a missing directory is PathNotFound. */
export function listFailure(path: string, err: unknown): never[] {
  if (path === '/' && errCode(err) === 'ENOENT') return [];
  if (isENOENT(err)) throw new PathNotFoundError(NAME, path);
  throw err;
}

/** A failed open or read of the file at `path`: nothing there, or a directory, is PathNotFound. */
export function readFailure(path: string, err: unknown): never {
  if (isENOENT(err) || errCode(err) === 'EISDIR') throw new PathNotFoundError(NAME, path);
  throw err;
}

export function fileInfo(path: string, st: Stats): FileInfo {
  const isDir = st.isDirectory();
  return { path, size: isDir ? 0 : st.size, modTime: st.mtime, isDir };
}

/** Nothing at `path`: the root always exists (even before the first write creates its directory); anything else is PathNotFound. */
export function missingStat(path: string): FileInfo {
  if (path === '/') return { path, size: 0, modTime: new Date(), isDir: true };
  throw new PathNotFoundError(NAME, path);
}

/** A failed stat of `path` (ENOTDIR too: a file where a directory was expected). */
export function statFailure(path: string, err: unknown): FileInfo {
  if (isENOENT(err)) return missingStat(path);
  throw err;
}

/**
 * Debris a crash leaves: a putContent's temp file (`name~tmp~hex`) or a tree a delete had hidden
 * but not yet removed (`name~deleting~hex`). Neither is ever listed; without this, they would
 * hold their disk space forever.
 */
const LEFTOVER = /~(tmp|deleting)~[0-9a-f]{12}$/;
/** A temp file younger than this may belong to a putContent in progress. */
const TEMP_FILE_MAX_AGE_MS = 60 * 60 * 1000;

/**
 * Remove, in the background, the debris among `names` (the entries of directory `dir`): doomed
 * trees at once (nobody can reach them), temp files once they are an hour old. Listings call it,
 * so a garbage collection, which lists every directory of the layout, clears a crash's leftovers.
 */
export function sweepLeftovers(dir: string, names: string[]): void {
  for (const name of names) {
    const kind = LEFTOVER.exec(name)?.[1];
    if (!kind) continue;
    const full = join(dir, name);
    const removal =
      kind === 'deleting'
        ? fsp.rm(full, { recursive: true, force: true })
        : fsp.lstat(full).then((st) => (Date.now() - st.mtimeMs > TEMP_FILE_MAX_AGE_MS ? fsp.rm(full, { force: true }) : undefined));
    removal.catch(() => undefined); // a later listing tries again
  }
}

/** A sibling name no valid path can spell (see `isValidSegment`). */
function hiddenSibling(full: string, purpose: string): string {
  return `${full}~${purpose}~${randomBytes(6).toString('hex')}`;
}

export class FilesystemDriver implements StorageDriver {
  readonly name = NAME;
  private readonly root: string;

  constructor(options: FilesystemOptions) {
    this.root = options.rootdirectory;
  }

  /** The on-disk path of a file or directory; '/' (the root) only when allowRoot. */
  protected full(path: string, allowRoot = false): string {
    checkPath(NAME, path, allowRoot);
    return join(this.root, path);
  }

  async getContent(path: string): Promise<Buffer> {
    const full = this.full(path);
    try {
      return await fsp.readFile(full);
    } catch (err) {
      return readFailure(path, err);
    }
  }

  async putContent(path: string, content: Buffer): Promise<void> {
    const target = this.full(path);
    const temp = hiddenSibling(target, 'tmp');
    await fsp.mkdir(dirname(target), { recursive: true });
    try {
      await fsp.writeFile(temp, content);
      await fsp.rename(temp, target);
    } catch (err) {
      await fsp.rm(temp, { force: true });
      throw err;
    }
  }

  /** Open `path` for the bytes [offset, end); validates like `reader`. */
  private async openRange(path: string, offset: number, length?: number): Promise<{ handle: fsp.FileHandle; end: number }> {
    const full = this.full(path);
    if (length !== undefined && !(Number.isSafeInteger(length) && length >= 0)) {
      throw new RangeError(`${NAME}: invalid length ${length} for ${path}`);
    }
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(full, 'r');
    } catch (err) {
      readFailure(path, err);
    }
    try {
      const st = await handle.stat();
      // Opening a directory read-only succeeds on Linux; it is not a file.
      if (st.isDirectory()) throw new PathNotFoundError(NAME, path);
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > st.size) {
        throw new InvalidOffsetError(NAME, path, offset);
      }
      return { handle, end: length === undefined ? st.size : Math.min(st.size, offset + length) };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async reader(path: string, offset = 0, length?: number): Promise<Readable> {
    const { handle, end } = await this.openRange(path, offset, length);
    if (end <= offset) {
      await handle.close();
      return Readable.from([], { objectMode: false });
    }
    // `end` is inclusive for createReadStream.
    return createReadStream('', { fd: handle, start: offset, end: end - 1, highWaterMark: READ_CHUNK });
  }

  /**
   * Copy a range into `destination` through a few reused buffers: no fresh allocation (and
   * page faults) per chunk, which is most of the cost of serving large blobs from Node.
   * A buffer is read into again only after the destination has taken its bytes.
   */
  async sendTo(path: string, offset: number, length: number | undefined, destination: Writable): Promise<void> {
    const { handle, end } = await this.openRange(path, offset, length);
    const chunk = READ_CHUNK;
    // Buffers come from a pool shared by all transfers: a per-request allocation would live long
    // enough to reach V8's old generation and stay in memory until a full collection.
    const free: Buffer[] = [takeReadBuffer(), takeReadBuffer(), takeReadBuffer()];
    let waiting: ((b: Buffer | null) => void) | null = null;
    let gone = false;
    const onGone = () => {
      gone = true;
      waiting?.(null);
    };
    destination.once('close', onGone);
    destination.once('error', onGone);
    const release = (buf: Buffer) => {
      if (waiting) {
        const w = waiting;
        waiting = null;
        w(buf);
      } else free.push(buf);
    };
    try {
      let position = offset;
      while (position < end && !gone) {
        const buf = free.pop() ?? (await new Promise<Buffer | null>((resolve) => (waiting = resolve)));
        if (!buf || gone) break;
        const { bytesRead } = await handle.read(buf, 0, Math.min(chunk, end - position), position);
        if (gone) {
          free.push(buf);
          break;
        }
        if (bytesRead === 0) throw new Error(`${NAME}: ${path} ended early at ${position} of ${end}`);
        position += bytesRead;
        destination.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead), () => release(buf));
      }
      if (gone) throw Object.assign(new Error('destination closed'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
      await new Promise<void>((resolve, reject) => {
        destination.once('error', reject);
        destination.end(() => {
          destination.off('error', reject);
          resolve();
        });
      });
    } finally {
      destination.off('close', onGone);
      destination.off('error', onGone);
      await handle.close();
      // A buffer still queued on a destroyed socket is not returned: the pool just allocates anew.
      for (const b of free) giveReadBuffer(b);
    }
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    const full = this.full(path);
    await fsp.mkdir(dirname(full), { recursive: true });
    const handle = await fsp.open(full, append ? 'a' : 'w');
    const { size } = await handle.stat();
    return new FilesystemWriter(handle, full, size);
  }

  async stat(path: string): Promise<FileInfo> {
    const full = this.full(path, true);
    try {
      return fileInfo(path, await fsp.stat(full));
    } catch (err) {
      return statFailure(path, err);
    }
  }

  async list(path: string): Promise<string[]> {
    const full = this.full(path, true);
    let names: string[];
    try {
      names = await fsp.readdir(full);
    } catch (err) {
      return listFailure(path, err);
    }
    sweepLeftovers(full, names);
    return childPaths(path, names);
  }

  async move(source: string, dest: string): Promise<void> {
    const from = this.full(source);
    const to = this.full(dest);
    try {
      await fsp.rename(from, to);
      return;
    } catch (err) {
      if (!isENOENT(err)) throw err;
    }
    // Either the source is missing or dest's parent is: find out which before creating anything.
    try {
      await fsp.lstat(from);
    } catch (err) {
      if (isENOENT(err)) throw new PathNotFoundError(NAME, source);
      throw err;
    }
    await fsp.mkdir(dirname(to), { recursive: true });
    try {
      await fsp.rename(from, to);
    } catch (err) {
      if (errCode(err) === 'ENOENT') {
        const gone = await fsp.lstat(from).then(
          () => false,
          () => true,
        );
        if (gone) throw new PathNotFoundError(NAME, source);
      }
      throw err;
    }
  }

  async delete(path: string): Promise<void> {
    const full = this.full(path);
    // Rename first so a tree disappears at once for readers, then remove it at leisure.
    const doomed = hiddenSibling(full, 'deleting');
    try {
      await fsp.rename(full, doomed);
    } catch (err) {
      if (isENOENT(err)) throw new PathNotFoundError(NAME, path);
      throw err;
    }
    await fsp.rm(doomed, { recursive: true, force: true });
  }

  async redirectURL(_method: string, path: string): Promise<string | null> {
    checkPath(NAME, path);
    return null;
  }

  async walk(path: string, visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip'): Promise<void> {
    checkPath(NAME, path, true);
    const children = await this.list(path);
    for (const child of children) {
      let info: FileInfo;
      try {
        info = await this.stat(child);
      } catch (err) {
        if (err instanceof PathNotFoundError) continue; // removed while walking
        throw err;
      }
      const verdict = await visit(info);
      if (info.isDir && verdict !== 'skip') await this.walk(child, visit);
    }
  }
}

/**
 * Batch buffers shared by all writers. A large upload copies the socket's chunks into one
 * while the previous one is on its way to disk: the chunks die young (cheap for V8 to
 * free) instead of piling up until a full collection, so memory stays flat however big the
 * blob is. Small writes never take one.
 */
const readPool: Buffer[] = [];
const READ_POOL_MAX = 24;

function takeReadBuffer(): Buffer {
  return readPool.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK);
}

function giveReadBuffer(buffer: Buffer): void {
  if (readPool.length < READ_POOL_MAX && !readPool.includes(buffer)) readPool.push(buffer);
}

const batchPool: Buffer[] = [];
const BATCH_POOL_MAX = 24; // two per writer: enough for a dozen concurrent uploads without reallocating
/** Below this many bytes in a session, chunks are kept (copied) and written together on close. */
const SMALL_SESSION = 256 * 1024;

function takeBatch(): Buffer {
  return batchPool.pop() ?? Buffer.allocUnsafeSlow(WRITE_BATCH);
}

function giveBatch(buffer: Buffer): void {
  if (batchPool.length < BATCH_POOL_MAX) batchPool.push(buffer);
}

/** Appends in place; at most one batch filling and one being written (backpressure). */
class FilesystemWriter implements FileWriter {
  readonly releasesChunks = true;
  private small: Buffer[] = [];
  private smallBytes = 0;
  private batch: Buffer | null = null;
  private fill = 0;
  private inFlight: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  private closed = false;
  private written: number;

  constructor(
    private readonly handle: fsp.FileHandle,
    private readonly full: string,
    initialSize: number,
  ) {
    this.written = initialSize;
  }

  get size(): number {
    return this.written;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error('writer is closed');
    this.written += chunk.length;
    if (!this.batch) {
      if (this.smallBytes + chunk.length < SMALL_SESSION) {
        this.small.push(Buffer.from(chunk)); // a copy: callers may reuse what they wrote (releasesChunks)
        this.smallBytes += chunk.length;
        return;
      }
      this.batch = takeBatch();
      this.fill = 0;
      for (const b of this.small) this.fill += b.copy(this.batch, this.fill);
      this.small = [];
      this.smallBytes = 0;
    }
    let offset = 0;
    while (offset < chunk.length) {
      const copied = chunk.copy(this.batch!, this.fill, offset);
      this.fill += copied;
      offset += copied;
      if (this.fill === WRITE_BATCH) {
        await this.flushBatch();
        if (this.failure) throw this.failure;
        this.batch = takeBatch();
      }
    }
  }

  /** Hand the filled batch to the disk once the previous one is written. */
  private async flushBatch(): Promise<void> {
    const buffer = this.batch!;
    const data = buffer.subarray(0, this.fill);
    this.batch = null;
    this.fill = 0;
    await this.inFlight;
    this.inFlight = this.writeAll([data]).finally(() => giveBatch(buffer));
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    if (this.failure) return;
    try {
      while (buffers.length > 0) {
        const { bytesWritten } = await this.handle.writev(buffers);
        buffers = dropBytes(buffers, bytesWritten);
      }
    } catch (err) {
      this.failure = err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.batch) {
      if (this.fill > 0) await this.flushBatch();
      else giveBatch(this.batch);
      this.batch = null;
    } else if (this.small.length > 0) {
      const small = this.small;
      this.small = [];
      this.smallBytes = 0;
      await this.inFlight;
      this.inFlight = this.writeAll(small);
    }
    await this.inFlight;
    await this.handle.close();
    if (this.failure) throw this.failure;
  }

  async commit(): Promise<void> {
    await this.close();
  }

  async cancel(): Promise<void> {
    this.small = [];
    this.smallBytes = 0;
    this.fill = 0;
    await this.close().catch(() => undefined);
    await fsp.rm(this.full, { force: true });
  }
}

function dropBytes(buffers: Buffer[], count: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const b of buffers) {
    if (count >= b.length) {
      count -= b.length;
      continue;
    }
    rest.push(count > 0 ? b.subarray(count) : b);
    count = 0;
  }
  return rest;
}
