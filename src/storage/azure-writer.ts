/**
 * The azure driver's writer: an append blob at the file's own name, as Distribution's azure
 * driver writes (2.8 and 3.x alike).
 *
 * Why append blobs rather than block blobs with staged blocks: every Append Block is durable and
 * part of the blob as soon as it is acknowledged, so `close()` needs no state object beside the
 * data (the s3 driver's '~pending' object) and a session on another instance resumes from the
 * blob's length alone; the append-position condition makes a second writer, or a retried request
 * that had in fact landed, fail instead of interleaving bytes; and an upload begun by a
 * Distribution instance on the same container can be resumed by Wharf and the other way round.
 * Staged blocks would need their own bookkeeping (uncommitted blocks are invisible, are dropped
 * after a week, and a re-committed block list is rewritten on every session).
 *
 * Blocks are 4 MiB (the limit of every service version, Distribution's size); past 40,000 blocks
 * (156 GiB) they grow to 100 MiB (allowed since service version 2022-11-02) so the 50,000-block
 * limit is reached only at about 1.1 TiB. One block is in flight while the next one fills.
 */
import type { Readable } from 'node:stream';
import type { AppendBlobClient, ContainerClient } from '@azure/storage-blob';
import { StorageError, type FileWriter } from './driver.js';
import { readStream } from './object-store.js';
import { ChunkBuffer, WriterSession } from './object-writer.js';

const MiB = 1024 * 1024;
export const APPEND_BLOCK = 4 * MiB;
const LARGE_APPEND_BLOCK = 100 * MiB;
const LARGE_AFTER_BLOCKS = 40_000;

export interface AzureWriterContext {
  /** The driver's name, for errors. */
  readonly name: string;
  readonly container: ContainerClient;
}

export function statusOf(err: unknown): number | undefined {
  // The SDK's RestError (not imported: the SDK loads lazily).
  return (err as { statusCode?: number } | null)?.statusCode;
}

export function codeOf(err: unknown): string | undefined {
  const e = err as { code?: string; details?: { errorCode?: string } } | null;
  return e?.details?.errorCode ?? e?.code;
}

export function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404;
}

/** Delete one blob; a blob that is not there is no error. */
export async function deleteBlob(container: ContainerClient, name: string): Promise<boolean> {
  try {
    await container.getBlobClient(name).delete();
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export class AzureWriter implements FileWriter {
  private readonly buffer = new ChunkBuffer();
  private total: number;
  /** Bytes the blob holds (acknowledged appends). */
  private position: number;
  private blocks: number;
  private readonly session: WriterSession;
  private readonly blob: AppendBlobClient;

  private constructor(
    private readonly ctx: AzureWriterContext,
    private readonly blobName: string,
    private readonly path: string,
    size: number,
    blocks: number,
  ) {
    this.session = new WriterSession(ctx.name, path);
    this.blob = ctx.container.getAppendBlobClient(blobName);
    this.total = this.position = size;
    this.blocks = blocks;
  }

  /** A writer that starts the file afresh: whatever was at the name is replaced by an empty append blob. */
  static async fresh(ctx: AzureWriterContext, blobName: string, path: string): Promise<AzureWriter> {
    const blob = ctx.container.getAppendBlobClient(blobName);
    try {
      await blob.create();
    } catch (err) {
      // Azure refuses to turn a blob of another type into an append blob in place.
      if (statusOf(err) !== 409) throw err;
      await deleteBlob(ctx.container, blobName);
      await blob.create();
    }
    return new AzureWriter(ctx, blobName, path, 0, 0);
  }

  /** A writer that continues the append blob at the name, or starts an empty one when there is none. */
  static async resume(ctx: AzureWriterContext, blobName: string, path: string): Promise<AzureWriter> {
    const blob = ctx.container.getAppendBlobClient(blobName);
    for (let attempt = 0; ; attempt++) {
      let props;
      try {
        props = await blob.getProperties();
      } catch (err) {
        if (!isNotFound(err)) throw err;
        try {
          await blob.create({ conditions: { ifNoneMatch: '*' } });
          return new AzureWriter(ctx, blobName, path, 0, 0);
        } catch (createErr) {
          // Someone else created it meanwhile: look again.
          if (attempt < 2 && (statusOf(createErr) === 409 || statusOf(createErr) === 412)) continue;
          throw createErr;
        }
      }
      const size = props.contentLength ?? 0;
      if (props.blobType === 'AppendBlob') return new AzureWriter(ctx, blobName, path, size, props.blobCommittedBlockCount ?? 0);
      if (size === 0) {
        // An empty file written by putContent (a block blob) becomes an empty append blob.
        try {
          await ctx.container.getBlobClient(blobName).delete({ conditions: { ifMatch: props.etag } });
        } catch (err) {
          if (attempt < 2 && (isNotFound(err) || statusOf(err) === 412)) continue;
          throw err;
        }
        continue;
      }
      throw new StorageError(`${ctx.name}: cannot append to ${path}: it is a ${props.blobType ?? 'non-append'} blob of ${size} bytes`, ctx.name, path);
    }
  }

  get size(): number {
    return this.total;
  }

  private blockSize(): number {
    return this.blocks < LARGE_AFTER_BLOCKS ? APPEND_BLOCK : LARGE_APPEND_BLOCK;
  }

  async write(chunk: Buffer): Promise<void> {
    this.session.check();
    if (chunk.length === 0) return;
    this.total += chunk.length;
    this.buffer.push(chunk);
    await this.buffer.sendParts(() => this.blockSize(), (block) => this.send(block));
  }

  /** Append one block once the previous one is acknowledged: one in flight while the next fills. */
  private async send(body: Buffer): Promise<void> {
    await this.session.settle();
    this.session.launch(this.append(body));
  }

  private async append(body: Buffer): Promise<void> {
    const at = this.position;
    try {
      await this.blob.appendBlock(body, body.length, { conditions: { appendPosition: at } });
    } catch (err) {
      // A retry (by the SDK) of a request that had landed meets its own bytes: accept them if they are ours.
      if (codeOf(err) !== 'AppendPositionConditionNotMet' || !(await this.landed(at, body))) {
        if (codeOf(err) === 'AppendPositionConditionNotMet') {
          throw new StorageError(`${this.ctx.name}: ${this.path} was appended to by someone else (expected ${at} bytes)`, this.ctx.name, this.path);
        }
        throw err;
      }
    }
    this.position = at + body.length;
    this.blocks++;
  }

  /** Whether the blob is exactly `at` bytes followed by `body`. */
  private async landed(at: number, body: Buffer): Promise<boolean> {
    const props = await this.blob.getProperties();
    if (props.contentLength !== at + body.length) return false;
    const res = await this.blob.download(at, body.length);
    return (await readStream(res.readableStreamBody as Readable)).equals(body);
  }

  private async flush(): Promise<void> {
    if (this.buffer.size > 0) await this.send(this.buffer.takeAll());
    await this.session.settle();
  }

  /** End the session: every byte written is in the blob, ready for `writer(path, true)`. */
  async close(): Promise<void> {
    if (!this.session.close()) return;
    await this.flush();
  }

  /** The append blob is the file: committing is flushing. */
  async commit(): Promise<void> {
    this.session.check();
    this.session.end('committed');
    await this.flush();
  }

  async cancel(): Promise<void> {
    this.session.end('cancelled');
    await this.session.idle();
    this.buffer.clear();
    await deleteBlob(this.ctx.container, this.blobName);
  }
}
