/**
 * The oss driver: Distribution's oss layout in an Aliyun OSS bucket, over ali-oss. A path `/a/b`
 * is the object `<rootdirectory>/a/b` with the leading '/' trimmed, exactly as Distribution's
 * oss driver names it, so a bucket written by registry:2 is served by Wharf and back.
 * Directories are key prefixes. Writers are multipart uploads resumable by any instance
 * (oss-writer.ts); moves are server-side copies (in parts from 128 MiB, as Distribution's) then
 * a delete; blob GETs may be redirected to V1 signed URLs valid 20 minutes.
 * Files still being written (an open multipart upload, no object yet) are seen by stat, reader,
 * move and delete, not by list and walk, which see objects only, as in Distribution.
 */
import type { Readable } from 'node:stream';
import { checkPath, isValidSegment, InvalidOffsetError, PathNotFoundError, type FileInfo, type FileWriter, type StorageDriver } from './driver.js';
import { isNotFound, OssApi, ossError, statusOf } from './oss-api.js';
import { COPY_CONCURRENCY, encryptionHeaders, makeOssClient, MAX_PARTS, parseOssOptions, signedURL, type OssSettings } from './oss-options.js';
import { abortUploadsUnder, OssWriter, uploadSize, type WriterContext } from './oss-writer.js';
import { evenRanges } from './s3-parts.js';
import { byteRange, checkReadArgs, eachLimited, emptyStream, listingOf, readCompleting, redirectable, walkListing } from './object-store.js';
import { completeUnfinished, OpenWriters } from './object-writer.js';

const NAME = 'oss';
/** Signed redirect URLs live this long, as Distribution's. */
const REDIRECT_EXPIRY_SECONDS = 20 * 60;
const LIST_MAX = 1000;

export interface OssDriverContext {
  log?: { warn(obj: object, msg: string): void };
  /** `storage.redirect.disable`: serve blobs ourselves instead of redirecting to OSS. */
  redirect?: boolean;
}

interface Probe {
  object: { size: number; modTime: Date } | null;
  dir: boolean;
}

export class OssDriver implements StorageDriver, WriterContext {
  readonly name = NAME;
  readonly api: OssApi;
  readonly chunkSize: number;
  readonly openWriters = new OpenWriters<OssWriter>();
  readonly settings: OssSettings;
  private readonly redirect: boolean;

  /** A driver from `storage.oss` parameters (Distribution's names), warning through `context.log`. */
  static fromOptions(options: Record<string, unknown>, context: OssDriverContext = {}): OssDriver {
    return new OssDriver(parseOssOptions(options, (message) => context.log?.warn({ driver: NAME }, message)), context);
  }

  constructor(settings: OssSettings, context: OssDriverContext = {}) {
    this.settings = settings;
    this.api = new OssApi(makeOssClient(settings), settings.bucket, encryptionHeaders(settings));
    this.chunkSize = settings.chunkSize;
    this.redirect = context.redirect ?? true;
  }

  /** The object key of a path: Distribution's `ossPath`. */
  key(path: string): string {
    return (this.settings.rootDirectory.replace(/\/+$/, '') + path).replace(/^\/+/, '');
  }

  private dirPrefix(path: string): string {
    return path === '/' ? this.key('/') : `${this.key(path)}/`;
  }

  /** Run an operation; an error from OSS becomes one that names the driver, the action and the path. */
  private async guard<T>(action: string, path: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof RangeError) throw err;
      throw ossError(NAME, path, action, err);
    }
  }

  async getContent(path: string): Promise<Buffer> {
    checkPath(NAME, path);
    return this.guard('read', path, () => readCompleting(NAME, path, () => this.api.getBuffer(this.key(path)), isNotFound, () => this.materialize(path)));
  }

  async putContent(path: string, content: Buffer): Promise<void> {
    checkPath(NAME, path);
    await this.guard('write', path, () => this.api.put(this.key(path), content));
  }

  /** GET the object; a file still being written is completed first (readers of an upload need its bytes). */
  private getObject(path: string, range?: string): Promise<Readable> {
    return readCompleting(NAME, path, () => this.api.getStream(this.key(path), range), isNotFound, () => this.materialize(path));
  }

  /** Complete the upload of a file still being written into its object. False when there is none. */
  private materialize(path: string): Promise<boolean> {
    const key = this.key(path);
    return completeUnfinished(this.openWriters, key, async () => ((await this.api.uploadsOf(key)).length === 0 ? null : OssWriter.resume(this, key, path)));
  }

  async reader(path: string, offset = 0, length?: number): Promise<Readable> {
    checkReadArgs(NAME, path, offset, length);
    return this.guard('read', path, async () => {
      if (length === 0) return this.emptyAt(path, offset);
      try {
        return await this.getObject(path, byteRange(offset, length));
      } catch (err) {
        if (statusOf(err) !== 416) throw err;
        return this.emptyAt(path, offset); // the range starts at or past the end
      }
    });
  }

  /** An empty stream at `offset`, which must not be past the end of the file. */
  private async emptyAt(path: string, offset: number): Promise<Readable> {
    const { size } = await this.statFile(path);
    if (offset > size) throw new InvalidOffsetError(NAME, path, offset);
    return emptyStream();
  }

  private async statFile(path: string): Promise<{ size: number; modTime: Date }> {
    const key = this.key(path);
    const object = await this.api.head(key);
    if (object) return object;
    const writing = await uploadSize(this, key);
    if (writing) return writing;
    throw new PathNotFoundError(NAME, path);
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    checkPath(NAME, path);
    const key = this.key(path);
    return this.guard('open a writer for', path, () => (append ? OssWriter.resume(this, key, path) : OssWriter.fresh(this, key, path)));
  }

  /** One listing tells whether `key` is an object, a directory, or neither. */
  private async probe(key: string): Promise<Probe> {
    const res = await this.api.list(key, '/', undefined, LIST_MAX);
    if (!res.truncated) {
      const found = res.objects.find((o) => o.key === key);
      return { object: found ? { size: found.size, modTime: found.modTime } : null, dir: res.prefixes.includes(`${key}/`) };
    }
    // Many siblings share the name as a prefix: ask precisely.
    const [object, below] = await Promise.all([this.api.head(key), this.api.list(`${key}/`, undefined, undefined, 1)]);
    return { object, dir: below.objects.length > 0 };
  }

  async stat(path: string): Promise<FileInfo> {
    checkPath(NAME, path, true);
    if (path === '/') return { path, size: 0, modTime: new Date(), isDir: true };
    return this.guard('stat', path, async () => {
      const key = this.key(path);
      const p = await this.probe(key);
      if (p.object) return { path, size: p.object.size, modTime: p.object.modTime, isDir: false };
      if (p.dir) return { path, size: 0, modTime: new Date(), isDir: true };
      const writing = await uploadSize(this, key);
      if (writing) return { path, size: writing.size, modTime: writing.modTime, isDir: false };
      throw new PathNotFoundError(NAME, path);
    });
  }

  /** The direct children of a directory, sorted. */
  private async entries(path: string): Promise<FileInfo[]> {
    const prefix = this.dirPrefix(path);
    const base = path === '/' ? '' : path;
    const files = new Map<string, FileInfo>();
    const dirs = new Set<string>();
    let marker: string | undefined;
    do {
      const res = await this.api.list(prefix, '/', marker, LIST_MAX);
      for (const o of res.objects) {
        const name = o.key.slice(prefix.length);
        if (isValidSegment(name)) files.set(name, { path: `${base}/${name}`, size: o.size, modTime: o.modTime, isDir: false });
      }
      for (const p of res.prefixes) {
        const name = p.slice(prefix.length, -1);
        if (isValidSegment(name)) dirs.add(name);
      }
      marker = res.truncated ? (res.nextMarker ?? undefined) : undefined;
    } while (marker);
    return listingOf(NAME, path, base, files, dirs);
  }

  async list(path: string): Promise<string[]> {
    checkPath(NAME, path, true);
    return this.guard('list', path, async () => (await this.entries(path)).map((e) => e.path));
  }

  async move(source: string, dest: string): Promise<void> {
    checkPath(NAME, source);
    checkPath(NAME, dest);
    await this.guard('move', `${source} to ${dest}`, async () => {
      const from = this.key(source);
      let object = await this.api.head(from);
      if (!object && (await this.materialize(source))) object = await this.api.head(from);
      if (!object) throw new PathNotFoundError(NAME, source);
      try {
        if (object.size < this.settings.copyThreshold) await this.api.copy(this.key(dest), from);
        else await this.multipartCopy(from, this.key(dest), object.size);
      } catch (err) {
        if (isNotFound(err)) throw new PathNotFoundError(NAME, source);
        throw err;
      }
      await this.api.deleteOne(from);
    });
  }

  /** Copy a large object in parts (UploadPartCopy), several at once, as Distribution does. */
  private async multipartCopy(from: string, to: string, size: number): Promise<void> {
    const partSize = Math.max(this.settings.copyPartSize, Math.ceil(size / MAX_PARTS));
    const ranges = evenRanges(size, partSize);
    const uploadId = await this.api.initUpload(to);
    const etags: string[] = new Array(ranges.length);
    try {
      await eachLimited(ranges, COPY_CONCURRENCY, async ([first, last], i) => {
        etags[i] = await this.api.uploadPartCopy(to, uploadId, i + 1, from, first, last);
      });
      await this.api.complete(to, uploadId, ranges.map(([first, last], i) => ({ number: i + 1, etag: etags[i]!, size: last - first + 1 })));
    } catch (err) {
      await this.api.abort(to, uploadId).catch(() => undefined);
      throw err;
    }
  }

  async delete(path: string): Promise<void> {
    checkPath(NAME, path);
    await this.guard('delete', path, async () => {
      const key = this.key(path);
      const p = await this.probe(key);
      const keys: string[] = p.object ? [key] : [];
      if (p.dir) {
        let marker: string | undefined;
        do {
          const res = await this.api.list(`${key}/`, undefined, marker, LIST_MAX);
          for (const o of res.objects) keys.push(o.key);
          marker = res.truncated ? (res.nextMarker ?? undefined) : undefined;
        } while (marker);
      }
      await this.api.deleteMany(keys);
      // Files being written at or below the path (an abandoned blob upload) go too.
      const aborted = await abortUploadsUnder(this, key, true);
      if (keys.length === 0 && aborted === 0) throw new PathNotFoundError(NAME, path);
    });
  }

  async redirectURL(method: string, path: string): Promise<string | null> {
    if (!redirectable(NAME, path, this.redirect, method)) return null;
    return signedURL(this.settings, method as 'GET' | 'HEAD', this.key(path), Math.floor(Date.now() / 1000) + REDIRECT_EXPIRY_SECONDS);
  }

  async walk(path: string, visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip'): Promise<void> {
    return walkListing(NAME, path, (dir) => this.guard('walk', dir, () => this.entries(dir)), visit);
  }
}
