/**
 * The oss driver's writer. As in Distribution's oss driver, a file being written is a multipart
 * upload at its key and nothing else: a session finds it with ListMultipartUploads, learns its
 * size from ListParts, adds parts, and on close sends what it holds as one more part, however
 * small. So any instance resumes any session, including one Distribution began.
 *
 * OSS takes a part under 100 KiB only as the last of an upload. A session that resumes an upload
 * ending in such a part completes the upload (the object at the key now holds every byte) and
 * starts a new one whose first parts are that object, copied server-side (UploadPartCopy), or
 * read back when it is under 100 KiB; Distribution does the same. The object is deleted once
 * the new upload holds its bytes. When both an object and an upload exist (a session died in
 * between), the longer wins: the upload's bytes always begin with the object's.
 *
 * Parts are `chunksize` bytes (growing past part 5,000, see s3-parts.ts), gathered in memory,
 * one in flight while the next fills.
 */
import { StorageError, type FileWriter } from './driver.js';
import { ossError, type OssApi, type PartInfo } from './oss-api.js';
import { MAX_PARTS, MIN_PART_SIZE } from './oss-options.js';
import { evenRanges, partSizeFor } from './s3-parts.js';
import { ChunkBuffer, WriterSession, type OpenWriters } from './object-writer.js';

/** What a writer needs from its driver. */
export interface WriterContext {
  readonly name: string;
  readonly api: OssApi;
  readonly chunkSize: number;
  /** Writers with an open session, by key: a reader of in-progress bytes asks them to checkpoint. */
  readonly openWriters: OpenWriters<OssWriter>;
}

/** The bytes an upload holds: its parts numbered 1, 2, ... without a gap (later ones are overwritten). */
function contiguous(parts: PartInfo[]): PartInfo[] {
  const out: PartInfo[] = [];
  for (const p of parts) {
    if (p.number !== out.length + 1) break;
    out.push(p);
  }
  return out;
}

/** Abort every upload of `key`, and with `tree` of every key below `key/`; how many there were. */
export async function abortUploadsUnder(ctx: WriterContext, key: string, tree: boolean): Promise<number> {
  const found = (await ctx.api.uploads(key)).filter((u) => u.key === key || (tree && u.key.startsWith(`${key}/`)));
  for (const u of found) await ctx.api.abort(u.key, u.uploadId);
  return found.length;
}

/** The size of the file being written at `key`, or null when no upload exists for it. */
export async function uploadSize(ctx: WriterContext, key: string): Promise<{ size: number; modTime: Date } | null> {
  const uploads = await ctx.api.uploadsOf(key);
  const newest = uploads[uploads.length - 1];
  if (!newest) return null;
  const parts = contiguous(await ctx.api.parts(key, newest.uploadId));
  return { size: parts.reduce((n, p) => n + p.size, 0), modTime: newest.initiated };
}

export class OssWriter implements FileWriter {
  private uploadId: string | null = null;
  private parts: PartInfo[] = [];
  /** The resumed upload ends in a part under 100 KiB: it must be completed before more parts. */
  private smallTail = false;
  /** Leading bytes that live in the object at the key and in no part yet. */
  private baseSize = 0;
  /** The object at the key is a snapshot of bytes now (or soon) in the upload: delete it then. */
  private snapshot = false;
  private readonly buffer = new ChunkBuffer();
  private total = 0;
  /** Upload ids this writer supersedes: aborted when it closes or commits. */
  private stale: string[] = [];
  private readonly session: WriterSession;

  private constructor(
    private readonly ctx: WriterContext,
    private readonly key: string,
    private readonly path: string,
  ) {
    this.session = new WriterSession(ctx.name, path, () => ctx.openWriters.release(key, this));
  }

  /** A writer that starts the file afresh (append=false): earlier bytes at the key are dropped now. */
  static async fresh(ctx: WriterContext, key: string, path: string): Promise<OssWriter> {
    await abortUploadsUnder(ctx, key, false);
    await ctx.api.deleteOne(key);
    return new OssWriter(ctx, key, path).register();
  }

  /** A writer that continues what earlier sessions wrote (append=true). */
  static async resume(ctx: WriterContext, key: string, path: string): Promise<OssWriter> {
    const w = new OssWriter(ctx, key, path);
    const [uploads, object] = await Promise.all([ctx.api.uploadsOf(key), ctx.api.head(key)]);
    const newest = uploads.pop();
    w.stale = uploads.map((u) => u.uploadId);
    if (newest) {
      const parts = contiguous(await ctx.api.parts(key, newest.uploadId));
      const size = parts.reduce((n, p) => n + p.size, 0);
      if (object && size < object.size) {
        w.stale.push(newest.uploadId);
      } else {
        w.uploadId = newest.uploadId;
        w.parts = parts;
        w.total = size;
        w.smallTail = parts.length > 0 && parts[parts.length - 1]!.size < MIN_PART_SIZE;
        if (object) await ctx.api.deleteOne(key); // a snapshot the upload has caught up with
        return w.register();
      }
    }
    if (object) w.baseSize = w.total = object.size;
    return w.register();
  }

  private register(): this {
    this.ctx.openWriters.set(this.key, this);
    return this;
  }

  get size(): number {
    return this.total;
  }

  private fail(message: string): StorageError {
    return new StorageError(`${this.ctx.name}: ${this.path}: ${message}`, this.ctx.name, this.path);
  }

  private check(): void {
    this.session.check((failure) => ossError(this.ctx.name, this.path, 'write to', failure));
  }

  private nextPartSize(): number {
    return partSizeFor(Math.min(MAX_PARTS, this.parts.length + 1), this.ctx.chunkSize);
  }

  /** Run a step; an error from OSS becomes one naming the driver, the action and the path. */
  private async guard<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof StorageError) throw err;
      throw ossError(this.ctx.name, this.path, action, err);
    }
  }

  async write(chunk: Buffer): Promise<void> {
    this.check();
    if (chunk.length === 0) return;
    await this.guard('write to', () => this.append(chunk));
  }

  private async append(chunk: Buffer): Promise<void> {
    if (this.smallTail) await this.restart();
    if (this.baseSize > 0) await this.absorbBase();
    this.total += chunk.length;
    this.buffer.push(chunk);
    await this.buffer.sendParts(() => this.nextPartSize(), (part) => this.sendPart(part));
  }

  /** Complete the upload whose last part is too small to be followed, and go on from that object. */
  private async restart(): Promise<void> {
    await this.ctx.api.complete(this.key, this.uploadId!, this.parts);
    this.uploadId = null;
    this.parts = [];
    this.smallTail = false;
    this.baseSize = this.total;
  }

  /** Make the object at the key the first bytes of this writer's upload (or of its buffer). */
  private async absorbBase(): Promise<void> {
    const size = this.baseSize;
    if (size >= MIN_PART_SIZE) {
      await this.ensureUpload();
      for (const [first, last] of evenRanges(size)) {
        const number = this.parts.length + 1;
        const etag = await this.ctx.api.uploadPartCopy(this.key, this.uploadId!, number, this.key, first, last);
        this.parts.push({ number, etag, size: last - first + 1 });
      }
      await this.ctx.api.deleteOne(this.key);
    } else {
      const bytes = await this.ctx.api.getBuffer(this.key);
      if (bytes.length !== size) throw this.fail(`changed while being appended to (${bytes.length} bytes, expected ${size})`);
      this.buffer.unshift(bytes);
      this.snapshot = true; // deleted once a part carries these bytes
    }
    this.baseSize = 0;
  }

  private async ensureUpload(): Promise<void> {
    this.uploadId ??= await this.ctx.api.initUpload(this.key);
  }

  /** Upload one part once the previous one is sent: one part in flight while the next fills. */
  private async sendPart(body: Buffer): Promise<void> {
    await this.session.settle();
    await this.ensureUpload();
    const number = this.parts.length + 1;
    if (number > MAX_PARTS) throw this.fail(`needs more than ${MAX_PARTS} parts`);
    const part: PartInfo = { number, etag: '', size: body.length };
    this.parts.push(part);
    this.session.launch(
      this.ctx.api.uploadPart(this.key, this.uploadId!, number, body).then(async (etag) => {
        part.etag = etag;
        if (this.snapshot) {
          this.snapshot = false;
          await this.ctx.api.deleteOne(this.key);
        }
      }),
    );
  }

  /** End the session: what it holds becomes one more part, so a later session can resume. */
  async close(): Promise<void> {
    if (!this.session.close()) return;
    await this.guard('close', () => this.flush());
  }

  private async flush(): Promise<void> {
    await this.session.settle();
    if (this.buffer.size > 0) {
      await this.sendPart(this.buffer.takeAll());
      await this.session.settle();
    }
    await this.abortStale();
  }

  async commit(): Promise<void> {
    this.check();
    this.session.end('committed');
    await this.guard('commit', () => this.finish());
  }

  /** Make every byte written so far the object at the key (a reader needs them), and go on appending to it. */
  async checkpoint(): Promise<void> {
    this.check();
    await this.guard('complete', () => this.finish());
    this.baseSize = this.total;
  }

  private async finish(): Promise<void> {
    await this.session.settle();
    if (this.uploadId) {
      if (this.buffer.size > 0) {
        await this.sendPart(this.buffer.takeAll());
        await this.session.settle();
      }
      if (this.parts.length > 0) {
        await this.ctx.api.complete(this.key, this.uploadId, this.parts);
      } else {
        await this.ctx.api.abort(this.key, this.uploadId);
        await this.ctx.api.put(this.key, Buffer.alloc(0));
      }
    } else if (this.baseSize === 0) {
      // Everything is in the buffer (or nothing was written): one PutObject.
      await this.ctx.api.put(this.key, this.buffer.takeAll());
    } // else: nothing was appended to the object at the key, which holds every byte already.
    this.snapshot = false; // replaced by the complete object
    this.uploadId = null;
    this.parts = [];
    this.smallTail = false;
    await this.abortStale();
  }

  async cancel(): Promise<void> {
    this.session.end('cancelled');
    await this.guard('cancel', () => this.discard());
  }

  private async discard(): Promise<void> {
    await this.session.idle();
    this.buffer.clear();
    if (this.uploadId) this.stale.push(this.uploadId);
    this.uploadId = null;
    await this.abortStale();
    await abortUploadsUnder(this.ctx, this.key, false);
    await this.ctx.api.deleteOne(this.key);
  }

  private async abortStale(): Promise<void> {
    const ids = this.stale;
    this.stale = [];
    for (const id of ids) await this.ctx.api.abort(this.key, id);
  }
}
