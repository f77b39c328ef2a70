/**
 * The s3 driver's writer: a file written across several sessions becomes one multipart upload.
 *
 * Between sessions the upload's state lives in the bucket, so any instance can resume it:
 * - the multipart upload holds the full parts (each >= 5 MiB, see s3-parts.ts);
 * - the bytes after the last full part (fewer than a part, so they cannot be a part yet: S3
 *   refuses parts under 5 MiB unless they are last) are kept in a pending object, the key
 *   plus PENDING_SUFFIX, whose metadata names the upload id, the part count and the size.
 *   '~' is in no valid path segment, so list and walk never show that object as such.
 * Distribution 2.8 instead uploads the short tail as a part, then completes the upload and
 * starts a new one with the completed object as its first part; keeping the tail aside
 * avoids completing anything before commit. `close()` writes the pending object; a new
 * session reads it and lists the upload's parts; `commit()` sends the tail as the last part
 * and completes the upload; `cancel()` aborts it. A session that dies before `close()`
 * loses only its own bytes: the next one resumes from the last pending object, and part
 * numbers it reuses are overwritten.
 * A file that already exists as an object (e.g. after `materialize`) is continued by
 * copying it server-side into the first parts of a new upload (or, under 5 MiB, by
 * reading it back into the tail).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { StorageError, type FileWriter } from './driver.js';
import { baseCopyRanges, MAX_PARTS, MIN_PART_SIZE, partSizeFor } from './s3-parts.js';
import { ChunkBuffer, WriterSession, type OpenWriters } from './object-writer.js';

export const PENDING_SUFFIX = '~pending';
const META_UPLOAD = 'wharf-upload-id';
const META_PARTS = 'wharf-parts';
const META_SIZE = 'wharf-size';

export interface PutParams {
  ContentType: string;
  ACL?: string;
  ServerSideEncryption?: string;
  SSEKMSKeyId?: string;
  StorageClass?: string;
}

/** What a writer needs from its driver. */
export interface WriterContext {
  readonly name: string;
  readonly client: S3Client;
  readonly bucket: string;
  readonly chunkSize: number;
  putParams(): PutParams;
  copySource(key: string): string;
  /** Writers with an open session, by key: a reader of in-progress bytes asks them to checkpoint. */
  readonly openWriters: OpenWriters<S3Writer>;
}

interface Part {
  PartNumber: number;
  ETag: string;
  Size: number;
}

export function isNotFoundError(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name === 'NoSuchBucket' || e?.name === 'NoSuchUpload') return false;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

export function isNoSuchUpload(err: unknown): boolean {
  return (err as { name?: string })?.name === 'NoSuchUpload';
}

/** The pending object's state, or null when there is none. */
async function readPending(ctx: WriterContext, key: string): Promise<{ uploadId: string | null; parts: number; size: number; tail: Buffer } | null> {
  try {
    const res = await ctx.client.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key + PENDING_SUFFIX }));
    const tail = Buffer.from(await res.Body!.transformToByteArray());
    const meta = res.Metadata ?? {};
    return {
      uploadId: meta[META_UPLOAD] ? meta[META_UPLOAD] : null,
      parts: Number(meta[META_PARTS] ?? 0),
      size: Number(meta[META_SIZE] ?? tail.length),
      tail,
    };
  } catch (err) {
    if (isNotFoundError(err)) return null;
    throw err;
  }
}

/** The size recorded by a pending object (HEAD only), or null when there is none. */
export async function pendingSize(ctx: WriterContext, key: string): Promise<{ size: number; modTime: Date } | null> {
  try {
    const res = await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key + PENDING_SUFFIX }));
    return { size: Number(res.Metadata?.[META_SIZE] ?? res.ContentLength ?? 0), modTime: res.LastModified ?? new Date() };
  } catch (err) {
    if (isNotFoundError(err)) return null;
    throw err;
  }
}

async function listAllParts(ctx: WriterContext, key: string, uploadId: string): Promise<Part[]> {
  const parts: Part[] = [];
  let marker: string | undefined;
  for (;;) {
    const res = await ctx.client.send(new ListPartsCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
    for (const p of res.Parts ?? []) parts.push({ PartNumber: p.PartNumber!, ETag: p.ETag!, Size: p.Size ?? 0 });
    if (!res.IsTruncated) break;
    marker = res.NextPartNumberMarker;
  }
  return parts.sort((a, b) => a.PartNumber - b.PartNumber);
}

/** Abort every multipart upload whose key is `key` or below `key/` (orphans of dead sessions, purged uploads). */
export async function abortUploadsUnder(ctx: WriterContext, key: string, tree: boolean): Promise<void> {
  let keyMarker: string | undefined;
  let idMarker: string | undefined;
  for (;;) {
    const res = await ctx.client.send(
      new ListMultipartUploadsCommand({ Bucket: ctx.bucket, Prefix: key, KeyMarker: keyMarker, UploadIdMarker: idMarker }),
    );
    for (const u of res.Uploads ?? []) {
      if (u.Key === key || (tree && u.Key?.startsWith(`${key}/`))) await abort(ctx, u.Key!, u.UploadId!);
    }
    if (!res.IsTruncated) break;
    keyMarker = res.NextKeyMarker;
    idMarker = res.NextUploadIdMarker;
  }
}

async function abort(ctx: WriterContext, key: string, uploadId: string): Promise<void> {
  try {
    await ctx.client.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId }));
  } catch (err) {
    if (!isNoSuchUpload(err) && !isNotFoundError(err)) throw err;
  }
}

export class S3Writer implements FileWriter {
  private uploadId: string | null = null;
  private parts: Part[] = [];
  /** Leading bytes that live in the committed object at `key` and in no part yet. */
  private baseSize = 0;
  private readonly buffer = new ChunkBuffer();
  private total = 0;
  /** A pending object exists in the bucket (to replace on close, to delete on commit or cancel). */
  private pendingExists = false;
  /** Upload ids this writer supersedes: aborted once its own state is saved. */
  private stale: string[] = [];
  private dirty = false;
  private readonly session: WriterSession;

  private constructor(
    private readonly ctx: WriterContext,
    private readonly key: string,
    private readonly path: string,
  ) {
    this.session = new WriterSession(ctx.name, path, () => ctx.openWriters.release(key, this));
  }

  /** A writer that starts the file afresh (append=false). */
  static async fresh(ctx: WriterContext, key: string, path: string, lookForPending = true): Promise<S3Writer> {
    const w = new S3Writer(ctx, key, path);
    w.dirty = true;
    if (lookForPending) {
      const pending = await readPendingHead(ctx, key);
      if (pending) {
        w.pendingExists = true;
        if (pending.uploadId) w.stale.push(pending.uploadId);
      }
    }
    return w.register();
  }

  /** A writer that continues what earlier sessions wrote (append=true). */
  static async resume(ctx: WriterContext, key: string, path: string): Promise<S3Writer> {
    const w = new S3Writer(ctx, key, path);
    const pending = await readPending(ctx, key);
    if (pending) {
      w.pendingExists = true;
      if (pending.uploadId) {
        let parts: Part[];
        try {
          parts = (await listAllParts(ctx, key, pending.uploadId)).filter((p) => p.PartNumber <= pending.parts);
        } catch (err) {
          if (!isNoSuchUpload(err)) throw err;
          // Completed by a session that died before removing the pending object?
          const size = await objectSize(ctx, key);
          if (size === pending.size) {
            w.baseSize = w.total = size;
            return w.register();
          }
          throw new StorageError(`${ctx.name}: the multipart upload of ${path} is gone (${pending.uploadId})`, ctx.name, path);
        }
        if (parts.length !== pending.parts || parts.some((p, i) => p.PartNumber !== i + 1)) {
          throw new StorageError(`${ctx.name}: the multipart upload of ${path} lacks parts it had`, ctx.name, path);
        }
        w.uploadId = pending.uploadId;
        w.parts = parts;
      }
      w.total = w.parts.reduce((n, p) => n + p.Size, 0) + pending.tail.length;
      if (pending.tail.length > 0) w.buffer.push(pending.tail);
      if (w.total !== pending.size) {
        throw new StorageError(`${ctx.name}: the upload state of ${path} is inconsistent (${w.total} != ${pending.size} bytes)`, ctx.name, path);
      }
      return w.register();
    }
    const size = await objectSize(ctx, key);
    if (size !== null) w.baseSize = w.total = size;
    return w.register();
  }

  private register(): this {
    this.ctx.openWriters.set(this.key, this);
    return this;
  }

  get size(): number {
    return this.total;
  }

  private nextPartSize(): number {
    return partSizeFor(Math.min(MAX_PARTS, this.parts.length + 1), this.ctx.chunkSize);
  }

  async write(chunk: Buffer): Promise<void> {
    this.session.check();
    if (chunk.length === 0) return;
    if (this.baseSize > 0) await this.absorbBase();
    this.dirty = true;
    this.total += chunk.length;
    this.buffer.push(chunk);
    await this.buffer.sendParts(() => this.nextPartSize(), (part) => this.sendPart(part));
  }

  /** Start uploading one part once the previous one is sent: one part in flight while the next fills. */
  private async sendPart(body: Buffer): Promise<void> {
    await this.session.settle();
    await this.ensureUpload();
    const partNumber = this.parts.length + 1;
    if (partNumber > MAX_PARTS) throw new StorageError(`${this.ctx.name}: ${this.path} needs more than ${MAX_PARTS} parts`, this.ctx.name, this.path);
    // Reserve the number now; the part is recorded when S3 has it.
    const placeholder: Part = { PartNumber: partNumber, ETag: '', Size: body.length };
    this.parts.push(placeholder);
    this.session.launch(
      this.ctx.client
        .send(new UploadPartCommand({ Bucket: this.ctx.bucket, Key: this.key, UploadId: this.uploadId!, PartNumber: partNumber, Body: body, ContentLength: body.length }))
        .then((res) => {
          placeholder.ETag = res.ETag!;
        }),
    );
  }

  private async ensureUpload(): Promise<void> {
    if (this.uploadId) return;
    const res = await this.ctx.client.send(new CreateMultipartUploadCommand({ Bucket: this.ctx.bucket, Key: this.key, ...this.ctx.putParams() } as never));
    this.uploadId = res.UploadId!;
  }

  /** Make the committed object's bytes the start of this writer's parts or tail. */
  private async absorbBase(): Promise<void> {
    const size = this.baseSize;
    if (size >= MIN_PART_SIZE) {
      await this.ensureUpload();
      for (const [first, last] of baseCopyRanges(size)) {
        const partNumber = this.parts.length + 1;
        const res = await this.ctx.client.send(
          new UploadPartCopyCommand({
            Bucket: this.ctx.bucket,
            Key: this.key,
            UploadId: this.uploadId!,
            PartNumber: partNumber,
            CopySource: this.ctx.copySource(this.key),
            CopySourceRange: `bytes=${first}-${last}`,
          }),
        );
        this.parts.push({ PartNumber: partNumber, ETag: res.CopyPartResult!.ETag!, Size: last - first + 1 });
      }
    } else {
      const res = await this.ctx.client.send(new GetObjectCommand({ Bucket: this.ctx.bucket, Key: this.key }));
      const bytes = Buffer.from(await res.Body!.transformToByteArray());
      if (bytes.length !== size) throw new StorageError(`${this.ctx.name}: ${this.path} changed while being appended to`, this.ctx.name, this.path);
      this.buffer.unshift(bytes);
    }
    this.baseSize = 0;
  }

  /** End the session, keeping what was written for a later `writer(path, true)`. */
  async close(): Promise<void> {
    if (!this.session.close()) return;
    await this.session.settle();
    if (!this.dirty) return;
    const tail = this.buffer.copy();
    await this.ctx.client.send(
      new PutObjectCommand({
        Bucket: this.ctx.bucket,
        Key: this.key + PENDING_SUFFIX,
        Body: tail,
        ContentLength: tail.length,
        ContentType: 'application/octet-stream',
        Metadata: { [META_UPLOAD]: this.uploadId ?? '', [META_PARTS]: String(this.parts.length), [META_SIZE]: String(this.total) },
      }),
    );
    this.pendingExists = true;
    await this.abortStale();
  }

  async commit(): Promise<void> {
    this.session.check();
    this.session.end('committed');
    await this.finish();
  }

  /**
   * Make everything written so far the object at `key` (a reader needs the bytes) and go on
   * as a writer appending to that object.
   */
  async checkpoint(): Promise<void> {
    this.session.check();
    await this.finish();
    this.baseSize = this.total;
    this.uploadId = null;
    this.parts = [];
    this.dirty = false;
  }

  private async finish(): Promise<void> {
    await this.session.settle();
    if (this.uploadId) {
      if (this.buffer.size > 0 || this.parts.length === 0) {
        const body = this.buffer.takeAll();
        const partNumber = this.parts.length + 1;
        const res = await this.ctx.client.send(
          new UploadPartCommand({ Bucket: this.ctx.bucket, Key: this.key, UploadId: this.uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length }),
        );
        this.parts.push({ PartNumber: partNumber, ETag: res.ETag!, Size: body.length });
      }
      await this.ctx.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.ctx.bucket,
          Key: this.key,
          UploadId: this.uploadId,
          MultipartUpload: { Parts: this.parts.map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag })) },
        }),
      );
    } else if (this.baseSize === 0) {
      // Everything is in the tail (or nothing was written): one PUT.
      const body = this.buffer.takeAll();
      await this.ctx.client.send(
        new PutObjectCommand({ Bucket: this.ctx.bucket, Key: this.key, Body: body, ContentLength: body.length, ...this.ctx.putParams() } as never),
      );
    } // else: nothing was appended to the committed object, which already holds every byte.
    if (this.pendingExists) {
      await deleteKeys(this.ctx, [this.key + PENDING_SUFFIX]);
      this.pendingExists = false;
    }
    await this.abortStale();
  }

  async cancel(): Promise<void> {
    const wasOpen = this.session.end('cancelled');
    await this.session.idle();
    this.buffer.clear();
    if (this.uploadId) this.stale.push(this.uploadId);
    this.uploadId = null;
    await this.abortStale();
    if (wasOpen || this.pendingExists) await abortUploadsUnder(this.ctx, this.key, false);
    await deleteKeys(this.ctx, [this.key, this.key + PENDING_SUFFIX]);
    this.pendingExists = false;
  }

  private async abortStale(): Promise<void> {
    const ids = this.stale.filter((id) => id !== this.uploadId);
    this.stale = [];
    for (const id of ids) await abort(this.ctx, this.key, id);
  }
}

async function readPendingHead(ctx: WriterContext, key: string): Promise<{ uploadId: string | null } | null> {
  try {
    const res = await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key + PENDING_SUFFIX }));
    const id = res.Metadata?.[META_UPLOAD];
    return { uploadId: id ? id : null };
  } catch (err) {
    if (isNotFoundError(err)) return null;
    throw err;
  }
}

export async function objectSize(ctx: WriterContext, key: string): Promise<number | null> {
  try {
    const res = await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }));
    return res.ContentLength ?? 0;
  } catch (err) {
    if (isNotFoundError(err)) return null;
    throw err;
  }
}

/** DeleteObjects in batches of 1,000 (the API's limit); a key that is not there is no error. */
export async function deleteKeys(ctx: WriterContext, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const res = await ctx.client.send(
      new DeleteObjectsCommand({ Bucket: ctx.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
    );
    const errors = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    if (errors.length > 0) {
      throw new Error(`${ctx.name}: could not delete ${errors.length} object(s): ${errors.map((e) => `${e.Key}: ${e.Code} ${e.Message}`).join('; ')}`);
    }
  }
}
