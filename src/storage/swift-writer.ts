/**
 * The swift driver's writer, in Distribution's layout: a file written through a writer is a
 * dynamic large object, a zero-byte manifest at the file's name whose `X-Object-Manifest` names a
 * segment directory `<container>/<prefix>/segments/<3 hex>/<37 hex>`, and the file's bytes are the
 * objects in that directory, `…/0000000000000001`, `…/0000000000000002`, …, in name order. Every
 * segment but a session's last holds exactly `chunksize` bytes.
 *
 * A segment is streamed to Swift as it is written (chunked transfer, backpressure from the socket),
 * so a writer holds no more than the chunk it was handed. Its MD5 is checked against the ETag Swift
 * answers. A session that dies mid-segment leaves no partial segment: Swift discards a chunked body
 * that never ended.
 *
 * Unlike Distribution, the manifest is written when the writer opens, not at the first close, so
 * the segments of a session that dies before closing belong to a file and are found (and deleted)
 * with it rather than left behind unnamed. Resuming (append) lists the manifest's segments: the
 * size is their sum, and new segments are numbered after the last, whichever program wrote them,
 * so an upload begun by Distribution is resumed by Wharf and the other way round.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { StorageError, type FileWriter } from './driver.js';
import type { SwiftConnection } from './swift-client.js';
import { WriterSession } from './object-writer.js';
import { drain, errorText, SwiftError, type UploadStream } from './swift-http.js';
import { segmentName, segmentNumber, type SwiftNames } from './swift-options.js';

/** What a writer needs from its driver. */
export interface SwiftWriterContext {
  readonly name: string;
  readonly conn: SwiftConnection;
  readonly names: SwiftNames;
  readonly chunkSize: number;
  /** Delete every segment a manifest value (`<container>/<prefix>`) names. */
  removeSegments(manifest: string): Promise<void>;
}

/** The container and name prefix of a manifest value. */
export function parseManifest(manifest: string): { container: string; prefix: string } {
  const slash = manifest.indexOf('/');
  return slash < 0 ? { container: manifest, prefix: '' } : { container: manifest.slice(0, slash), prefix: manifest.slice(slash + 1) };
}

/** A fresh segment directory for `path` (Distribution: sha1 of the path and 32 random bytes). */
function newSegments(ctx: SwiftWriterContext, path: string): string {
  const hex = createHash('sha1').update(path).update(randomBytes(32)).digest('hex');
  return ctx.names.segments(hex);
}

const READ_AFTER_WRITE_WAIT_MS = 200;
const READ_AFTER_WRITE_TIMEOUT_MS = 15_000;

interface Segment {
  stream: UploadStream;
  number: number;
  bytes: number;
  md5: Hash;
}

export class SwiftWriter implements FileWriter {
  private total: number;
  private current: Segment | null = null;
  private readonly session: WriterSession;

  private constructor(
    private readonly ctx: SwiftWriterContext,
    private readonly path: string,
    private readonly object: string,
    private readonly segments: string,
    private next: number,
    size: number,
  ) {
    this.session = new WriterSession(ctx.name, path);
    this.total = size;
  }

  private get manifest(): string {
    return `${this.ctx.conn.settings.container}/${this.segments}`;
  }

  /** A writer for `path`: appending continues the file there; otherwise the file starts afresh. */
  static async open(ctx: SwiftWriterContext, path: string, append: boolean): Promise<SwiftWriter> {
    const { conn } = ctx;
    const object = ctx.names.file(path);
    const head = await conn.head(object);
    if (append && head?.manifest) {
      const { container, prefix } = parseManifest(head.manifest);
      if (container !== conn.settings.container) {
        throw new StorageError(`${ctx.name}: cannot append to ${path}: its segments are in container ${container}`, ctx.name, path);
      }
      const { size, last } = await SwiftWriter.segmentsOf(ctx, prefix);
      return new SwiftWriter(ctx, path, object, prefix, last + 1, size);
    }
    const segments = newSegments(ctx, path);
    if (append && head) {
      // A plain object (putContent's): its bytes become segment 0, the manifest replaces it.
      if (!(await conn.copy(object, segmentName(segments, 0)))) {
        throw new StorageError(`${ctx.name}: ${path} disappeared while being appended to`, ctx.name, path);
      }
      await conn.put(object, Buffer.alloc(0), { 'X-Object-Manifest': `${conn.settings.container}/${segments}` });
      return new SwiftWriter(ctx, path, object, segments, 1, head.size);
    }
    await conn.put(object, Buffer.alloc(0), { 'X-Object-Manifest': `${conn.settings.container}/${segments}` });
    // A file replaced by a fresh writer: its segments would otherwise be left with no name.
    if (head?.manifest && parseManifest(head.manifest).prefix !== segments) await ctx.removeSegments(head.manifest);
    return new SwiftWriter(ctx, path, object, segments, 1, 0);
  }

  /**
   * The bytes and the highest segment number under a segment directory. The listing may lag on an
   * eventually consistent Swift, so segments after the last listed one are looked for directly too.
   */
  private static async segmentsOf(ctx: SwiftWriterContext, prefix: string): Promise<{ size: number; last: number }> {
    let size = 0;
    let last = 0;
    for await (const entry of ctx.conn.list({ prefix })) {
      if (!('name' in entry)) continue;
      size += entry.bytes;
      last = Math.max(last, segmentNumber(prefix, entry.name) ?? 0);
    }
    for (;;) {
      const more = await ctx.conn.head(segmentName(prefix, last + 1));
      if (!more) return { size, last };
      size += more.size;
      last++;
    }
  }

  get size(): number {
    return this.total;
  }

  async write(chunk: Buffer): Promise<void> {
    this.session.check();
    try {
      let offset = 0;
      while (offset < chunk.length) {
        this.current ??= await this.startSegment();
        const seg = this.current;
        const take = Math.min(chunk.length - offset, this.ctx.chunkSize - seg.bytes);
        const piece = take === chunk.length ? chunk : chunk.subarray(offset, offset + take);
        seg.md5.update(piece);
        seg.bytes += take;
        this.total += take;
        offset += take;
        await seg.stream.write(piece);
        if (seg.bytes === this.ctx.chunkSize) await this.endSegment();
      }
    } catch (err) {
      this.session.fail(err);
      this.current?.stream.abort();
      this.current = null;
      throw err;
    }
  }

  private async startSegment(): Promise<Segment> {
    const number = this.next++;
    const stream = await this.ctx.conn.upload(segmentName(this.segments, number));
    return { stream, number, bytes: 0, md5: createHash('md5') };
  }

  /** End the segment being streamed and check Swift stored exactly its bytes. */
  private async endSegment(): Promise<void> {
    const seg = this.current;
    if (!seg) return;
    this.current = null;
    const name = segmentName(this.segments, seg.number);
    const res = await seg.stream.finish();
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) throw new SwiftError(status, 'PUT', `/${this.ctx.conn.settings.container}/${name}`, await errorText(res));
    await drain(res);
    const etag = String(res.headers.etag ?? '').replace(/"/g, '');
    const md5 = seg.md5.digest('hex');
    if (etag && etag !== md5) {
      throw new StorageError(`${this.ctx.name}: segment ${name} of ${this.path} was stored with MD5 ${etag}, not ${md5}`, this.ctx.name, this.path);
    }
  }

  private async flush(): Promise<void> {
    try {
      await this.endSegment();
    } catch (err) {
      this.session.fail(err);
      throw err;
    }
  }

  /** End the session: every byte written is in a segment, and the manifest names them. */
  async close(): Promise<void> {
    if (!this.session.close()) return;
    if (this.session.failed) throw this.session.failed;
    await this.flush();
  }

  async commit(): Promise<void> {
    this.session.check();
    this.session.end('committed');
    await this.flush();
    await this.settled();
  }

  /**
   * Wait until the manifest reads as the bytes written (Distribution waits too: Swift's listings,
   * which a manifest's size comes from, may lag), putting it back if something removed it.
   */
  private async settled(): Promise<void> {
    let wait = READ_AFTER_WRITE_WAIT_MS;
    const deadline = Date.now() + READ_AFTER_WRITE_TIMEOUT_MS;
    for (;;) {
      const head = await this.ctx.conn.head(this.object);
      if (!head || head.manifest !== this.manifest) {
        await this.ctx.conn.put(this.object, Buffer.alloc(0), { 'X-Object-Manifest': this.manifest });
      } else if (head.size === this.total) {
        return;
      }
      if (Date.now() + wait > deadline) {
        throw new StorageError(`${this.ctx.name}: the segments of ${this.path} did not add up to ${this.total} bytes in time`, this.ctx.name, this.path);
      }
      await new Promise((r) => setTimeout(r, wait));
      wait *= 2;
    }
  }

  /** Discard the file: its manifest and every segment, from this session and earlier ones. */
  async cancel(): Promise<void> {
    this.session.end('cancelled');
    this.current?.stream.abort();
    this.current = null;
    await this.ctx.conn.delete(this.object);
    await this.ctx.removeSegments(this.manifest);
  }
}
