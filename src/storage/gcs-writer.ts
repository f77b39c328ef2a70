/**
 * The gcs driver's writer, with Distribution's format for an unfinished upload so that any
 * instance (Wharf or Distribution) can continue one that another began:
 *
 * - the bytes go to a Cloud Storage resumable upload session for the file's own object name, in
 *   chunks of `chunksize` (a multiple of 256 KiB, as the protocol requires of all but the last);
 * - `close()` sends what it can as whole 256 KiB units and saves the rest (under 256 KiB) as the
 *   body of an object at the file's name with content type `application/x-docker-upload-session`
 *   and custom metadata `Session-URI` (the session) and `Offset` (bytes in the session);
 * - `writer(path, true)` reads that object back: the session, the offset, the buffered tail;
 * - `commit()` sends the tail as the last chunk, which completes the session and replaces the
 *   state object with the file in one step (or, with no session yet, stores the bytes directly).
 *
 * Unlike Distribution, resuming asks the session how many bytes it holds: a writer that died
 * after sending chunks but before saving its state left more bytes in the session than the state
 * says, and those bytes (sent in order from the same input) are kept rather than sent twice.
 * A committed file that is appended to (after a reader needed the bytes of an unfinished one) is
 * copied through Wharf into a new session: Cloud Storage cannot append to an object.
 */
import type { Readable } from 'node:stream';
import { StorageError, type FileWriter } from './driver.js';
import { CHUNK_QUANTUM } from './gcs-options.js';
import { cancelSession, createSession, queryStatus, uploadChunk, type SessionContext } from './gcs-session.js';
import { readStream } from './object-store.js';
import { ChunkBuffer, completeUnfinished, WriterSession, type OpenWriters } from './object-writer.js';

export const SESSION_TYPE = 'application/x-docker-upload-session';
export const BLOB_TYPE = 'application/octet-stream';
const META_SESSION = 'Session-URI';
const META_OFFSET = 'Offset';
/** A state object's tail is under 256 KiB when Wharf writes it, at most a chunk when Distribution does. */
const MAX_TAIL_CHUNKS = 2;

export interface ObjectMeta {
  size: number;
  contentType: string;
  metadata: Record<string, string>;
  updated: Date;
}

/** What a writer needs from its driver: the session endpoint plus a few object operations. */
export interface WriterContext extends SessionContext {
  readonly chunkSize: number;
  /** Writers with an open session, by object name: a reader of their bytes asks them to checkpoint. */
  readonly openWriters: OpenWriters<GcsWriter>;
  head(objectName: string): Promise<ObjectMeta | null>;
  download(objectName: string): Promise<Readable>;
  save(objectName: string, content: Buffer, contentType: string, metadata?: Record<string, string>): Promise<void>;
  remove(objectName: string): Promise<boolean>;
}

function metaValue(m: ObjectMeta, key: string): string | undefined {
  const want = key.toLowerCase();
  for (const [k, v] of Object.entries(m.metadata)) if (k.toLowerCase() === want) return v ?? undefined;
  return undefined;
}

export function isUploadState(m: ObjectMeta): boolean {
  return m.contentType === SESSION_TYPE;
}

/** The file's size: for an unfinished upload the session's bytes plus the buffered tail. */
export function fileSize(m: ObjectMeta): number {
  if (!isUploadState(m)) return m.size;
  const offset = Number(metaValue(m, META_OFFSET) || '0');
  return (Number.isSafeInteger(offset) && offset > 0 ? offset : 0) + m.size;
}

export class GcsWriter implements FileWriter {
  /** The resumable upload session's URI, once there is one. */
  private sessionURI: string | null = null;
  /** Bytes the upload session holds. */
  private offset = 0;
  private readonly buffer = new ChunkBuffer();
  private total = 0;
  /** Something changed since the state was read: close() must save it. */
  private dirty = true;
  private readonly session: WriterSession;

  private constructor(
    private readonly ctx: WriterContext,
    private readonly objectName: string,
    private readonly path: string,
  ) {
    this.session = new WriterSession(ctx.name, path, () => ctx.openWriters.release(objectName, this));
  }

  /** A writer that starts the file afresh (append=false); an older session is left to expire. */
  static fresh(ctx: WriterContext, objectName: string, path: string): GcsWriter {
    return new GcsWriter(ctx, objectName, path).register();
  }

  private register(): this {
    this.ctx.openWriters.set(this.objectName, this);
    return this;
  }

  /** A writer that continues what earlier sessions wrote (append=true); empty when there is nothing. */
  static async resume(ctx: WriterContext, objectName: string, path: string): Promise<GcsWriter> {
    return (await GcsWriter.open(ctx, objectName, path, true))!;
  }

  /** The writer for an unfinished upload, or null when the file is committed (or missing). */
  static resumeUnfinished(ctx: WriterContext, objectName: string, path: string): Promise<GcsWriter | null> {
    return GcsWriter.open(ctx, objectName, path, false);
  }

  private static async open(ctx: WriterContext, objectName: string, path: string, reopenCommitted: boolean): Promise<GcsWriter | null> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const w = new GcsWriter(ctx, objectName, path);
      const m = await ctx.head(objectName);
      if (!m || !isUploadState(m)) {
        if (!reopenCommitted) return null;
        if (m && m.size > 0) await w.refill(m.size);
        return w.register();
      }
      if (await w.load(m)) return w.register();
      // The session completed meanwhile (another reader materialized the file): look again.
    }
    throw new StorageError(`${ctx.name}: ${path} keeps changing while being resumed`, ctx.name, path);
  }

  /** Take over an upload state object; false when its session has completed since. */
  private async load(m: ObjectMeta): Promise<boolean> {
    const { ctx, path } = this;
    const limit = MAX_TAIL_CHUNKS * ctx.chunkSize;
    if (m.size > limit) throw new StorageError(`${ctx.name}: the upload state of ${path} holds ${m.size} bytes, more than ${limit}`, ctx.name, path);
    this.dirty = false;
    const uri = metaValue(m, META_SESSION) || null;
    const rawOffset = metaValue(m, META_OFFSET) || '0';
    let offset = /^\d+$/.test(rawOffset) ? Number(rawOffset) : NaN;
    if (!Number.isSafeInteger(offset)) throw new StorageError(`${ctx.name}: the upload state of ${path} has an invalid Offset ${JSON.stringify(rawOffset)}`, ctx.name, path);
    let tail = await readStream(await ctx.download(this.objectName), limit).catch((err) => {
      throw new StorageError(`${ctx.name}: cannot read the upload state of ${path}: ${(err as Error).message}`, ctx.name, path);
    });
    if (uri === null) {
      if (offset !== 0) throw new StorageError(`${ctx.name}: the upload state of ${path} names ${offset} bytes but no session`, ctx.name, path);
    } else {
      const status = await queryStatus(ctx, uri, path);
      if (status.state === 'done') return false;
      if (status.state === 'gone') {
        throw new StorageError(`${ctx.name}: the upload session of ${path} expired or was cancelled (${status.status}): the upload cannot continue`, ctx.name, path);
      }
      if (status.persisted < offset) {
        throw new StorageError(`${ctx.name}: the upload session of ${path} holds ${status.persisted} bytes but its state says ${offset}`, ctx.name, path);
      }
      if (status.persisted > offset) {
        // A session that died after sending chunks: keep what the store has, drop what it duplicates.
        tail = tail.subarray(Math.min(tail.length, status.persisted - offset));
        offset = status.persisted;
        this.dirty = true;
      }
    }
    this.sessionURI = uri;
    this.offset = offset;
    if (tail.length > 0) this.buffer.push(tail);
    this.total = offset + tail.length;
    return true;
  }

  /** Continue a committed file: its bytes are copied through into a new session. */
  private async refill(size: number): Promise<void> {
    for await (const chunk of await this.ctx.download(this.objectName)) await this.write(chunk as Buffer);
    if (this.total !== size) {
      await this.cancelUpload();
      throw new StorageError(`${this.ctx.name}: ${this.path} changed while being reopened for appending`, this.ctx.name, this.path);
    }
  }

  get size(): number {
    return this.total;
  }

  async write(chunk: Buffer): Promise<void> {
    this.session.check();
    if (chunk.length === 0) return;
    this.dirty = true;
    this.total += chunk.length;
    this.buffer.push(chunk);
    await this.buffer.sendParts(() => this.ctx.chunkSize, (part) => this.send(part));
  }

  /** Upload one chunk once the previous one is acknowledged: one in flight while the next fills. */
  private async send(body: Buffer): Promise<void> {
    await this.session.settle();
    this.session.launch(this.upload(body));
  }

  private async upload(body: Buffer): Promise<void> {
    this.sessionURI ??= await createSession(this.ctx, this.objectName, this.path);
    await uploadChunk(this.ctx, this.sessionURI, body, this.offset, null, this.path);
    this.offset += body.length;
  }

  /**
   * Make every byte written so far the committed file (a reader of the path needs them) and go on
   * as a writer appending to it, which copies the file into a new session.
   */
  async checkpoint(): Promise<void> {
    this.session.check();
    await this.session.settle();
    if (this.sessionURI === null) {
      // Everything is still in the buffer: store a copy, keep writing into the buffer.
      await this.ctx.save(this.objectName, this.buffer.copy(), BLOB_TYPE);
      this.dirty = true;
      return;
    }
    await uploadChunk(this.ctx, this.sessionURI, this.buffer.takeAll(), this.offset, this.total, this.path);
    const size = this.total;
    this.sessionURI = null;
    this.offset = 0;
    this.total = 0;
    await this.refill(size);
  }

  /** End the session: whole 256 KiB units go to the store, the rest into the state object. */
  async close(): Promise<void> {
    if (!this.session.close()) return;
    await this.session.settle();
    if (!this.dirty) return;
    const units = this.buffer.size - (this.buffer.size % CHUNK_QUANTUM);
    if (units > 0) await this.upload(this.buffer.take(units));
    const tail = this.buffer.takeAll();
    await this.ctx.save(this.objectName, tail, SESSION_TYPE, { [META_SESSION]: this.sessionURI ?? '', [META_OFFSET]: String(this.offset) });
    this.dirty = false;
  }

  /** Complete the session with the tail (or store the bytes at once when there is no session). */
  async commit(): Promise<void> {
    this.session.check();
    this.session.end('committed');
    await this.session.settle();
    const rest = this.buffer.takeAll();
    if (this.sessionURI === null) {
      await this.ctx.save(this.objectName, rest, BLOB_TYPE);
    } else {
      await uploadChunk(this.ctx, this.sessionURI, rest, this.offset, this.total, this.path);
      this.offset = this.total;
    }
  }

  async cancel(): Promise<void> {
    this.session.end('cancelled');
    await this.cancelUpload();
    await this.ctx.remove(this.objectName);
  }

  private async cancelUpload(): Promise<void> {
    await this.session.idle();
    this.buffer.clear();
    if (this.sessionURI) await cancelSession(this.ctx, this.sessionURI);
    this.sessionURI = null;
  }
}

/**
 * Turn an unfinished upload into the file (readers need its bytes, and Cloud Storage cannot read
 * a session): a writer of this process holding it checkpoints, else the state is resumed and
 * committed. Nothing to do when it is no longer unfinished.
 */
export async function materialize(ctx: WriterContext, objectName: string, path: string): Promise<void> {
  await completeUnfinished(ctx.openWriters, objectName, () => GcsWriter.resumeUnfinished(ctx, objectName, path));
}
