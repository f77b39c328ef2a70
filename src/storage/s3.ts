/**
 * The s3 driver: Distribution's s3-aws layout on S3 or an S3-compatible store (Ceph RGW,
 * MinIO). A path `/a/b` is the object `<rootdirectory>/a/b` (leading '/' trimmed), exactly
 * as Distribution names it, so a bucket written by registry:2 is served by Wharf and back.
 * Directories are key prefixes. Writers are multipart uploads (s3-writer.ts); moves are
 * server-side copies (multipart above `multipartcopythresholdsize`), falling back to a
 * streamed copy when the store refuses to copy (Ceph RGW with SSE-KMS); blob GETs may be
 * redirected to presigned URLs.
 */
import type { Readable, Writable } from 'node:stream';
import {
  CopyObjectCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCopyCommand,
  type ListObjectsV2CommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { checkPath, isValidSegment, InvalidOffsetError, PathNotFoundError, type FileInfo, type FileWriter, type StorageDriver } from './driver.js';
import { makeS3Client, parseS3Options, type ClientLog, type S3Settings } from './s3-options.js';
import { copyPartSize, copyRanges } from './s3-parts.js';
import {
  abortUploadsUnder,
  deleteKeys,
  isNotFoundError,
  objectSize,
  pendingSize,
  PENDING_SUFFIX,
  S3Writer,
  type PutParams,
  type WriterContext,
} from './s3-writer.js';
import { byteRange, checkReadArgs, emptyStream, eachLimited, listingOf, readCompleting, redirectable, sendCoalesced, walkListing } from './object-store.js';
import { completeUnfinished, OpenWriters } from './object-writer.js';
import { sendDirect } from './direct-get.js';

const NAME = 's3';
/** Presigned redirect URLs live this long, as Distribution's. */
const REDIRECT_EXPIRY_SECONDS = 20 * 60;
const LIST_MAX = 1000;
/**
 * Blob reads this large bypass the SDK's HTTP stack (direct-get.ts) on a connection of their
 * own: below it, a new connection (a TLS handshake on AWS) costs more than the copying saves.
 */
const DIRECT_GET_MIN = 8 * 1024 * 1024;
const DIRECT_GET_EXPIRY_SECONDS = 15 * 60;

export interface S3DriverContext {
  log?: ClientLog;
  /** `storage.redirect.disable`: serve blobs ourselves instead of redirecting to the store. */
  redirect?: boolean;
}

interface Probe {
  object: { size: number; modTime: Date } | null;
  pending: boolean;
  dir: boolean;
}

export class S3Driver implements StorageDriver, WriterContext {
  readonly name = NAME;
  readonly client: S3Client;
  readonly bucket: string;
  readonly chunkSize: number;
  readonly openWriters = new OpenWriters<S3Writer>();
  readonly settings: S3Settings;
  private readonly presigner: S3Client;
  private readonly redirect: boolean;
  private readonly log?: ClientLog;
  private warnedCopy = false;

  /** A driver from `storage.s3` parameters (Distribution's names), warning through `context.log`. */
  static fromOptions(options: Record<string, unknown>, context: S3DriverContext = {}): S3Driver {
    return new S3Driver(parseS3Options(options, (message) => context.log?.warn({ driver: NAME }, message)), context);
  }

  constructor(settings: S3Settings, context: S3DriverContext = {}) {
    this.settings = settings;
    this.log = context.log;
    this.client = makeS3Client(this.settings, context.log);
    this.presigner = this.settings.redirectEndpoint ? makeS3Client(this.settings, context.log, this.settings.redirectEndpoint) : this.client;
    this.bucket = this.settings.bucket;
    this.chunkSize = this.settings.chunkSize;
    this.redirect = context.redirect ?? true;
  }

  /** The object key of a path: Distribution's `s3Path`. */
  key(path: string): string {
    return (this.settings.rootDirectory.replace(/\/+$/, '') + path).replace(/^\/+/, '');
  }

  /** The key prefix of a directory's children. */
  private dirPrefix(path: string): string {
    return path === '/' ? this.key('/') : `${this.key(path)}/`;
  }

  putParams(): PutParams {
    const s = this.settings;
    return {
      ContentType: 'application/octet-stream',
      ACL: s.objectAcl,
      ServerSideEncryption: s.encrypt ? (s.keyId ? 'aws:kms' : 'AES256') : undefined,
      SSEKMSKeyId: s.encrypt && s.keyId ? s.keyId : undefined,
      StorageClass: s.storageClass,
    };
  }

  copySource(key: string): string {
    return `${this.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  async getContent(path: string): Promise<Buffer> {
    checkPath(NAME, path);
    const res = await this.getObject(path);
    const bytes = await res.Body!.transformToByteArray();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async putContent(path: string, content: Buffer): Promise<void> {
    checkPath(NAME, path);
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: this.key(path), Body: content, ContentLength: content.length, ...this.putParams() } as never),
    );
  }

  /**
   * GET the object; when it is missing but a writer left its bytes pending (closed, not
   * committed), complete them into the object first: readers of an upload need its bytes.
   */
  private async getObject(path: string, range?: string) {
    const key = this.key(path);
    return readCompleting(
      NAME,
      path,
      () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range })),
      isNotFoundError,
      () => this.materialize(path),
    );
  }

  /** Turn a closed writer's state (parts + pending tail) into the object. False when there is none. */
  private materialize(path: string): Promise<boolean> {
    const key = this.key(path);
    return completeUnfinished(this.openWriters, key, async () => ((await pendingSize(this, key)) === null ? null : S3Writer.resume(this, key, path)));
  }

  async reader(path: string, offset = 0, length?: number): Promise<Readable> {
    checkReadArgs(NAME, path, offset, length);
    if (length === 0) return this.emptyAt(path, offset);
    try {
      const res = await this.getObject(path, byteRange(offset, length));
      return res.Body as Readable;
    } catch (err) {
      if ((err as { name?: string }).name !== 'InvalidRange' && (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 416) throw err;
      return this.emptyAt(path, offset); // the range starts at or past the end
    }
  }

  /** An empty stream at `offset`, which must not be past the end of the file. */
  private async emptyAt(path: string, offset: number): Promise<Readable> {
    const { size } = await this.statFile(path);
    if (offset > size) throw new InvalidOffsetError(NAME, path, offset);
    return emptyStream();
  }

  async sendTo(path: string, offset: number, length: number | undefined, destination: Writable): Promise<void> {
    if (length !== undefined && length >= DIRECT_GET_MIN) {
      checkReadArgs(NAME, path, offset, length);
      const url = await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.key(path) }), { expiresIn: DIRECT_GET_EXPIRY_SECONDS });
      const how = await sendDirect(new URL(url), offset, length, destination, { rejectUnauthorized: !this.settings.skipVerify, userAgent: this.settings.userAgent });
      if (how === 'sent') return;
    }
    await sendCoalesced(await this.reader(path, offset, length), destination);
  }

  private async statFile(path: string): Promise<{ size: number }> {
    const size = await objectSize(this, this.key(path));
    if (size !== null) return { size };
    const pending = await pendingSize(this, this.key(path));
    if (pending) return pending;
    throw new PathNotFoundError(NAME, path);
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    checkPath(NAME, path);
    const key = this.key(path);
    return append ? S3Writer.resume(this, key, path) : S3Writer.fresh(this, key, path);
  }

  /** One listing tells whether `key` is a file, has a pending writer state, or is a directory. */
  private async probe(key: string): Promise<Probe> {
    const res = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: key, Delimiter: '/', MaxKeys: LIST_MAX }));
    if (!res.IsTruncated) {
      const found = (res.Contents ?? []).find((c) => c.Key === key);
      return {
        object: found ? { size: found.Size ?? 0, modTime: found.LastModified ?? new Date() } : null,
        pending: (res.Contents ?? []).some((c) => c.Key === key + PENDING_SUFFIX),
        dir: (res.CommonPrefixes ?? []).some((p) => p.Prefix === `${key}/`),
      };
    }
    // Many siblings share the name as a prefix: ask precisely.
    const [head, pending, below] = await Promise.all([
      this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })).catch((err) => {
        if (isNotFoundError(err)) return null;
        throw err;
      }),
      pendingSize(this, key),
      this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${key}/`, MaxKeys: 1 })),
    ]);
    return {
      object: head ? { size: head.ContentLength ?? 0, modTime: head.LastModified ?? new Date() } : null,
      pending: pending !== null,
      dir: (below.KeyCount ?? below.Contents?.length ?? 0) > 0,
    };
  }

  async stat(path: string): Promise<FileInfo> {
    checkPath(NAME, path, true);
    if (path === '/') return { path, size: 0, modTime: new Date(), isDir: true };
    const key = this.key(path);
    const p = await this.probe(key);
    if (p.pending) {
      const pending = await pendingSize(this, key);
      if (pending) return { path, size: pending.size, modTime: pending.modTime, isDir: false };
    }
    if (p.object) return { path, size: p.object.size, modTime: p.object.modTime, isDir: false };
    if (p.dir) return { path, size: 0, modTime: new Date(), isDir: true };
    throw new PathNotFoundError(NAME, path);
  }

  /** The direct children of a directory with what the listing tells about them, sorted. */
  private async entries(path: string): Promise<FileInfo[]> {
    const prefix = this.dirPrefix(path);
    const base = path === '/' ? '' : path;
    const files = new Map<string, FileInfo>();
    const pendings: string[] = [];
    const dirs = new Set<string>();
    let token: string | undefined;
    do {
      const res: ListObjectsV2CommandOutput = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', MaxKeys: LIST_MAX, ContinuationToken: token }),
      );
      for (const c of res.Contents ?? []) {
        const name = c.Key!.slice(prefix.length);
        if (name.endsWith(PENDING_SUFFIX)) pendings.push(name.slice(0, -PENDING_SUFFIX.length));
        else if (isValidSegment(name)) files.set(name, { path: `${base}/${name}`, size: c.Size ?? 0, modTime: c.LastModified ?? new Date(), isDir: false });
      }
      for (const p of res.CommonPrefixes ?? []) {
        const name = p.Prefix!.slice(prefix.length, -1);
        if (isValidSegment(name)) dirs.add(name);
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    for (const name of pendings) {
      if (!isValidSegment(name)) continue;
      const pending = await pendingSize(this, `${prefix}${name}`);
      if (pending) files.set(name, { path: `${base}/${name}`, size: pending.size, modTime: pending.modTime, isDir: false });
    }
    return listingOf(NAME, path, base, files, dirs);
  }

  async list(path: string): Promise<string[]> {
    checkPath(NAME, path, true);
    return (await this.entries(path)).map((e) => e.path);
  }

  async move(source: string, dest: string): Promise<void> {
    checkPath(NAME, source);
    checkPath(NAME, dest);
    const from = this.key(source);
    let size = await objectSize(this, from);
    if (size === null) {
      if (!(await this.materialize(source))) throw new PathNotFoundError(NAME, source);
      size = await objectSize(this, from);
      if (size === null) throw new PathNotFoundError(NAME, source);
    }
    await this.copy(source, dest, size);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: from }));
  }

  /** Server-side copy; a streamed copy when the store refuses (Ceph RGW will not copy SSE-KMS objects). */
  private async copy(source: string, dest: string, size: number): Promise<void> {
    try {
      if (size <= this.settings.multipartCopyThresholdSize) {
        await this.client.send(
          new CopyObjectCommand({ Bucket: this.bucket, Key: this.key(dest), CopySource: this.copySource(this.key(source)), ...this.putParams() } as never),
        );
      } else {
        await this.multipartCopy(source, dest, size);
      }
    } catch (err) {
      if (isNotFoundError(err)) throw new PathNotFoundError(NAME, source);
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === undefined) throw err; // not an answer from the store (network, client)
      if (!this.warnedCopy) {
        this.warnedCopy = true;
        this.log?.warn({ driver: NAME, err: { name: (err as Error).name, message: (err as Error).message, status } }, 'the store refused a server-side copy: copying through Wharf instead');
      }
      await this.streamedCopy(source, dest);
    }
  }

  private async multipartCopy(source: string, dest: string, size: number): Promise<void> {
    const destKey = this.key(dest);
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: destKey, ...this.putParams() } as never));
    const uploadId = created.UploadId!;
    const ranges = copyRanges(size, copyPartSize(size, this.settings.multipartCopyChunkSize));
    const etags: string[] = new Array(ranges.length);
    try {
      await eachLimited(ranges, this.settings.multipartCopyMaxConcurrency, async ([first, last], i) => {
        const res = await this.client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: destKey,
            UploadId: uploadId,
            PartNumber: i + 1,
            CopySource: this.copySource(this.key(source)),
            CopySourceRange: `bytes=${first}-${last}`,
          }),
        );
        etags[i] = res.CopyPartResult!.ETag!;
      });
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: destKey,
          UploadId: uploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
        }),
      );
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: destKey, UploadId: uploadId })).catch(() => undefined);
      throw err;
    }
  }

  /** Read the source through Wharf and write it as a new object (multipart when large). */
  private async streamedCopy(source: string, dest: string): Promise<void> {
    const res = await this.getObject(source);
    const w = await S3Writer.fresh(this, this.key(dest), dest, false);
    try {
      for await (const chunk of res.Body as Readable) await w.write(Buffer.from(chunk as Buffer));
      await w.commit();
    } catch (err) {
      await w.cancel().catch(() => undefined);
      throw err;
    }
  }

  async delete(path: string): Promise<void> {
    checkPath(NAME, path);
    const key = this.key(path);
    const p = await this.probe(key);
    if (!p.object && !p.pending && !p.dir) throw new PathNotFoundError(NAME, path);
    const keys: string[] = [];
    if (p.object) keys.push(key);
    if (p.pending) keys.push(key + PENDING_SUFFIX);
    if (p.dir) {
      let token: string | undefined;
      do {
        const res: ListObjectsV2CommandOutput = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${key}/`, MaxKeys: LIST_MAX, ContinuationToken: token }),
        );
        for (const c of res.Contents ?? []) keys.push(c.Key!);
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    }
    await deleteKeys(this, keys);
    // Uploads in progress below the path (an abandoned blob upload) would otherwise keep their parts forever.
    await abortUploadsUnder(this, key, true);
  }

  async redirectURL(method: string, path: string): Promise<string | null> {
    if (!redirectable(NAME, path, this.redirect, method)) return null;
    const input = { Bucket: this.bucket, Key: this.key(path) };
    const command = method === 'GET' ? new GetObjectCommand(input) : new HeadObjectCommand(input);
    return getSignedUrl(this.presigner, command, { expiresIn: REDIRECT_EXPIRY_SECONDS });
  }

  async walk(path: string, visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip'): Promise<void> {
    return walkListing(NAME, path, (dir) => this.entries(dir), visit);
  }
}
