/**
 * The fake OSS server's storage: buckets of objects and multipart uploads, whose bytes are files
 * in a temporary directory (bodies are streamed to disk, never held in memory). An object is
 * replaced by swapping its entry once the new file is complete, so readers see the old or the new
 * bytes; a replaced file is removed when its last reader is done.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface Encryption {
  algorithm: string;
  keyId?: string;
}

export interface ObjectAttributes {
  contentType: string;
  encryption?: Encryption;
  meta: Record<string, string>;
}

export interface StoredObject extends ObjectAttributes {
  file: string;
  size: number;
  etag: string;
  lastModified: Date;
  type: 'Normal' | 'Multipart';
  readers: number;
  replaced: boolean;
}

export interface Part {
  number: number;
  file: string;
  size: number;
  etag: string;
  lastModified: Date;
}

export interface Upload extends ObjectAttributes {
  id: string;
  bucket: string;
  key: string;
  initiated: Date;
  parts: Map<number, Part>;
}

export interface Received {
  file: string;
  size: number;
  md5: Buffer;
}

export class OssError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The response headers that tell how an object is encrypted. */
export function encryptionHeaders(e: Encryption | undefined): Record<string, string> {
  if (!e) return {};
  return e.keyId ? { 'x-oss-server-side-encryption': e.algorithm, 'x-oss-server-side-encryption-key-id': e.keyId } : { 'x-oss-server-side-encryption': e.algorithm };
}

export function quotedEtag(md5: Buffer): string {
  return `"${md5.toString('hex').toUpperCase()}"`;
}

export class Store {
  private readonly buckets = new Map<string, Map<string, StoredObject>>();
  readonly uploads = new Map<string, Upload>();
  private sequence = 0;

  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  private newFile(): string {
    return join(this.dir, `${Date.now()}-${++this.sequence}-${randomBytes(4).toString('hex')}`);
  }

  createBucket(name: string): void {
    if (!this.buckets.has(name)) this.buckets.set(name, new Map());
  }

  hasBucket(name: string): boolean {
    return this.buckets.has(name);
  }

  private bucket(name: string): Map<string, StoredObject> {
    const b = this.buckets.get(name);
    if (!b) throw new OssError(404, 'NoSuchBucket', 'The specified bucket does not exist.', { BucketName: name });
    return b;
  }

  /** Stream a body to a new file, with its MD5; a declared Content-MD5 must match. Limited to `max` bytes. */
  async receive(body: Readable, max: number, contentMd5?: string): Promise<Received> {
    const file = this.newFile();
    const md5 = createHash('md5');
    let size = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > max) return done(new OssError(400, 'EntityTooLarge', `Your proposed upload exceeds the maximum allowed size (${max} bytes).`));
        md5.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(body, count, createWriteStream(file));
    } catch (err) {
      await rm(file, { force: true });
      throw err;
    }
    const digest = md5.digest();
    if (contentMd5 !== undefined && contentMd5 !== digest.toString('base64')) {
      await rm(file, { force: true });
      if (!/^[A-Za-z0-9+/]{22}==$/.test(contentMd5)) throw new OssError(400, 'InvalidDigest', 'The Content-MD5 you specified is not valid.');
      throw new OssError(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
    }
    return { file, size, md5: digest };
  }

  async discard(received: Received): Promise<void> {
    await rm(received.file, { force: true });
  }

  get(bucket: string, key: string): StoredObject | undefined {
    return this.bucket(bucket).get(key);
  }

  /** The object, or NoSuchKey. */
  need(bucket: string, key: string): StoredObject {
    const o = this.get(bucket, key);
    if (!o) throw new OssError(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key });
    return o;
  }

  /** Make `file` the object at `key` in one step, retiring the file it replaces. */
  private install(bucket: string, key: string, object: StoredObject): StoredObject {
    const objects = this.bucket(bucket);
    const old = objects.get(key);
    objects.set(key, object);
    if (old) this.retire(old);
    return object;
  }

  private retire(o: StoredObject): void {
    o.replaced = true;
    if (o.readers === 0) unlink(o.file).catch(() => undefined);
  }

  put(bucket: string, key: string, received: Received, attrs: ObjectAttributes, type: StoredObject['type'] = 'Normal', etag = quotedEtag(received.md5)): StoredObject {
    return this.install(bucket, key, { ...attrs, file: received.file, size: received.size, etag, lastModified: new Date(), type, readers: 0, replaced: false });
  }

  /** Bytes first..last (inclusive) of an object; the file stays until the stream closes. */
  read(o: StoredObject, first: number, last: number): Readable {
    if (o.size === 0 || last < first) return Readable.from([], { objectMode: false });
    o.readers++;
    const stream = createReadStream(o.file, { start: first, end: last });
    stream.once('close', () => {
      o.readers--;
      if (o.replaced && o.readers === 0) unlink(o.file).catch(() => undefined);
    });
    return stream;
  }

  delete(bucket: string, key: string): boolean {
    const objects = this.bucket(bucket);
    const old = objects.get(key);
    if (!old) return false;
    objects.delete(key);
    this.retire(old);
    return true;
  }

  async copy(bucket: string, key: string, source: StoredObject, attrs: ObjectAttributes): Promise<StoredObject> {
    const file = this.newFile();
    source.readers++;
    try {
      await copyFile(source.file, file);
    } finally {
      source.readers--;
      if (source.replaced && source.readers === 0) unlink(source.file).catch(() => undefined);
    }
    const copied = { file, size: source.size, md5: Buffer.alloc(0) };
    return this.put(bucket, key, copied, attrs, source.type, source.etag);
  }

  /** Objects and common prefixes after `marker`, at most `max` of them together (GetBucket, V1). */
  list(bucket: string, prefix: string, delimiter: string, marker: string, max: number) {
    const keys = [...this.bucket(bucket).keys()].filter((k) => k.startsWith(prefix) && k > marker).sort();
    const contents: StoredObject[] = [];
    const contentKeys: string[] = [];
    const prefixes: string[] = [];
    let last = '';
    let truncated = false;
    for (const key of keys) {
      const cut = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
      const common = cut >= 0 ? key.slice(0, cut + delimiter.length) : null;
      if (common !== null && (common === prefixes[prefixes.length - 1] || common <= marker)) continue;
      if (contents.length + prefixes.length === max) {
        truncated = true;
        break;
      }
      if (common !== null) prefixes.push((last = common));
      else {
        contents.push(this.need(bucket, key));
        contentKeys.push((last = key));
      }
    }
    return { contents: contents.map((o, i) => ({ key: contentKeys[i]!, object: o })), prefixes, truncated, nextMarker: truncated ? last : '' };
  }

  initUpload(bucket: string, key: string, attrs: ObjectAttributes): Upload {
    this.bucket(bucket);
    const id = randomBytes(16).toString('hex').toUpperCase();
    const upload: Upload = { ...attrs, id, bucket, key, initiated: new Date(), parts: new Map() };
    this.uploads.set(id, upload);
    return upload;
  }

  /** The upload `id` of `bucket`/`key`, or NoSuchUpload. */
  upload(bucket: string, key: string, id: string | null): Upload {
    const u = id === null ? undefined : this.uploads.get(id);
    if (!u || u.bucket !== bucket || u.key !== key) {
      throw new OssError(404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', { UploadId: id ?? '' });
    }
    return u;
  }

  putPart(upload: Upload, number: number, received: Received, etag = quotedEtag(received.md5)): Part {
    const old = upload.parts.get(number);
    const part = { number, file: received.file, size: received.size, etag, lastModified: new Date() };
    upload.parts.set(number, part);
    if (old) unlink(old.file).catch(() => undefined);
    return part;
  }

  /** Bytes first..last of `source` as part `number` of `upload`. */
  async copyPart(upload: Upload, number: number, source: StoredObject, first: number, last: number): Promise<Part> {
    const received = await this.receive(this.read(source, first, last), Number.MAX_SAFE_INTEGER);
    return this.putPart(upload, number, received);
  }

  /** CompleteMultipartUpload: the listed parts, in order, become the object. */
  async complete(upload: Upload, listed: Array<{ number: number; etag: string }>, minPartSize: number): Promise<StoredObject> {
    if (listed.length === 0) throw new OssError(400, 'MalformedXML', 'The XML you provided was not well-formed: it names no part.');
    const parts: Part[] = [];
    for (const [i, p] of listed.entries()) {
      if (i > 0 && p.number <= listed[i - 1]!.number) throw new OssError(400, 'InvalidPartOrder', 'The list of parts was not in ascending order.');
      const part = upload.parts.get(p.number);
      if (!part || part.etag.replace(/"/g, '').toUpperCase() !== p.etag.replace(/"/g, '').toUpperCase()) {
        throw new OssError(400, 'InvalidPart', 'One or more of the specified parts could not be found or the specified entity tag might not have matched the part\'s entity tag.', { PartNumber: String(p.number) });
      }
      if (i < listed.length - 1 && part.size < minPartSize) {
        throw new OssError(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed size.', { PartNumber: String(p.number), MinSizeAllowed: String(minPartSize) });
      }
      parts.push(part);
    }
    const file = this.newFile();
    await pipeline(async function* () {
      for (const part of parts) yield* createReadStream(part.file);
    }, createWriteStream(file));
    const md5 = createHash('md5');
    for (const part of parts) md5.update(Buffer.from(part.etag.replace(/"/g, ''), 'hex'));
    const etag = `"${md5.digest('hex').toUpperCase()}-${parts.length}"`;
    const size = parts.reduce((n, p) => n + p.size, 0);
    await this.drop(upload);
    return this.put(upload.bucket, upload.key, { file, size, md5: Buffer.alloc(0) }, upload, 'Multipart', etag);
  }

  async drop(upload: Upload): Promise<void> {
    this.uploads.delete(upload.id);
    await Promise.all([...upload.parts.values()].map((p) => rm(p.file, { force: true })));
  }

  /** The bucket's uploads sorted by key, then by initiation. */
  uploadsOf(bucket: string): Upload[] {
    return [...this.uploads.values()]
      .filter((u) => u.bucket === bucket)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.initiated.getTime() - b.initiated.getTime()));
  }

  objectCount(): number {
    let n = 0;
    for (const b of this.buckets.values()) n += b.size;
    return n;
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
