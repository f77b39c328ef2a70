/**
 * The OSS operations the oss driver uses, over ali-oss, with plain results: ali-oss hands back
 * xml2js shapes (one element instead of a list, "true" as a string), so they are normalized
 * here once. Errors keep ali-oss's `code` and `status`; `describe` makes them readable.
 */
import type { Readable } from 'node:stream';
import type OSS from 'ali-oss';
import { StorageError } from './driver.js';

export interface ObjectInfo {
  key: string;
  size: number;
  modTime: Date;
}

export interface Listing {
  objects: ObjectInfo[];
  prefixes: string[];
  nextMarker: string | null;
  truncated: boolean;
}

export interface UploadInfo {
  key: string;
  uploadId: string;
  initiated: Date;
}

export interface PartInfo {
  number: number;
  etag: string;
  size: number;
}

/** The ali-oss methods used here, as they really behave (its type definitions are loose). */
interface RawClient {
  head(name: string, options?: object): Promise<{ status: number; res: { headers: Record<string, string> } }>;
  get(name: string, file?: unknown, options?: object): Promise<{ content: Buffer }>;
  getStream(name: string, options?: object): Promise<{ stream: Readable; res: { status: number } }>;
  put(name: string, body: Buffer, options?: object): Promise<unknown>;
  list(query: object, options?: object): Promise<{ objects?: Array<{ name: string; size: number; lastModified: string }>; prefixes: string[] | null; nextMarker: string | null; isTruncated: boolean }>;
  delete(name: string): Promise<unknown>;
  deleteMulti(names: string[], options?: object): Promise<unknown>;
  initMultipartUpload(name: string, options?: object): Promise<{ uploadId: string }>;
  uploadPart(name: string, uploadId: string, partNo: number, file: Buffer, start: number, end: number, options?: object): Promise<{ etag: string }>;
  uploadPartCopy(name: string, uploadId: string, partNo: number, range: string, source: { sourceKey: string; sourceBucketName: string }, options?: object): Promise<{ etag: string }>;
  completeMultipartUpload(name: string, uploadId: string, parts: Array<{ number: number; etag: string }>, options?: object): Promise<unknown>;
  abortMultipartUpload(name: string, uploadId: string): Promise<unknown>;
  listUploads(query: object): Promise<{ uploads: Array<{ name: string; uploadId: string; initiated: string }>; nextKeyMarker?: string; nextUploadIdMarker?: string; isTruncated: boolean }>;
  listParts(name: string, uploadId: string, query?: object): Promise<{ parts: unknown; isTruncated: unknown; nextPartNumberMarker?: unknown }>;
  _objectRequestParams(method: string, name: string, options: object): object;
  request(params: object): Promise<unknown>;
}

const LIST_MAX = 1000;

/** Bytes a request may take at least this long for (a slow link moves 1 MiB/s). */
function timeoutFor(bytes: number): number {
  return 120_000 + Math.ceil(bytes / (1024 * 1024)) * 1000;
}

function asList<T>(v: T | T[] | undefined | null): T[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

export function statusOf(err: unknown): number | undefined {
  const s = (err as { status?: unknown })?.status;
  return typeof s === 'number' ? s : undefined;
}

export function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'string' ? c : undefined;
}

/** OSS says the object is not there (a HEAD 404 has no body, so no code). */
export function isNotFound(err: unknown): boolean {
  const code = codeOf(err);
  return statusOf(err) === 404 && (code === undefined || code === 'NoSuchKey');
}

export function isNoSuchUpload(err: unknown): boolean {
  return codeOf(err) === 'NoSuchUpload';
}

/** "SignatureDoesNotMatch (HTTP 403): The request signature ..." */
export function describe(err: unknown): string {
  const e = err as { code?: string; status?: number; message?: string };
  const code = e?.code ?? (err as Error)?.name ?? 'error';
  return `${code}${e?.status !== undefined ? ` (HTTP ${e.status})` : ''}: ${e?.message ?? String(err)}`;
}

/** An error from OSS as one naming the driver, the action and the path ("oss: stat /x: AccessDenied (HTTP 403): ..."). */
export function ossError(driver: string, path: string, action: string, err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  const e = new StorageError(`${driver}: ${action} ${path}: ${describe(err)}`, driver, path);
  (e as { cause?: unknown }).cause = err;
  return e;
}

export class OssApi {
  private readonly raw: RawClient;

  constructor(
    client: OSS,
    readonly bucket: string,
    private readonly putHeaders: Record<string, string>,
  ) {
    this.raw = client as unknown as RawClient;
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const res = await this.raw.head(key);
      const h = res.res.headers;
      return { key, size: Number(h['content-length'] ?? 0), modTime: new Date(h['last-modified'] ?? Date.now()) };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async getBuffer(key: string): Promise<Buffer> {
    const res = await this.raw.get(key);
    return Buffer.isBuffer(res.content) ? res.content : Buffer.from(res.content ?? []);
  }

  /**
   * The object's bytes as a stream (HTTP 416 when `range` starts at or past the end: with
   * x-oss-range-behavior: standard OSS clips a range that ends past the object, and refuses
   * one that starts there, instead of answering the whole object).
   */
  async getStream(key: string, range?: string): Promise<Readable> {
    const headers: Record<string, string> = range ? { Range: range, 'x-oss-range-behavior': 'standard' } : {};
    const res = await this.raw.getStream(key, { headers });
    return res.stream;
  }

  async put(key: string, body: Buffer): Promise<void> {
    await this.raw.put(key, body, { mime: 'application/octet-stream', headers: { ...this.putHeaders }, timeout: timeoutFor(body.length) });
  }

  async list(prefix: string, delimiter: string | undefined, marker: string | undefined, max = LIST_MAX): Promise<Listing> {
    const query: Record<string, string | number> = { prefix, 'max-keys': max };
    if (delimiter) query.delimiter = delimiter;
    if (marker) query.marker = marker;
    const res = await this.raw.list(query, {});
    return {
      objects: asList(res.objects).map((o) => ({ key: o.name, size: Number(o.size), modTime: new Date(o.lastModified) })),
      prefixes: asList(res.prefixes),
      nextMarker: res.nextMarker,
      truncated: res.isTruncated,
    };
  }

  /** CopyObject within the bucket; new objects get the configured encryption. */
  async copy(dest: string, source: string): Promise<void> {
    // ali-oss's copy() would also send every header again as x-oss-copy-source-<header>.
    const params = this.raw._objectRequestParams('PUT', dest, {
      headers: { 'x-oss-copy-source': `/${this.bucket}/${encodeURIComponent(source)}`, ...this.putHeaders },
      timeout: 600_000,
    });
    await this.raw.request({ ...params, successStatuses: [200] });
  }

  /** DeleteMultipleObjects in batches of 1,000; keys that are not there are no error. */
  async deleteMany(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) await this.raw.deleteMulti(keys.slice(i, i + 1000), { quiet: true });
  }

  async deleteOne(key: string): Promise<void> {
    await this.raw.delete(key);
  }

  async initUpload(key: string): Promise<string> {
    return (await this.raw.initMultipartUpload(key, { mime: 'application/octet-stream', headers: { ...this.putHeaders } })).uploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<string> {
    const res = await this.raw.uploadPart(key, uploadId, partNumber, body, 0, body.length, { timeout: timeoutFor(body.length) });
    return res.etag;
  }

  /** UploadPartCopy of bytes first..last (inclusive) of `source`. */
  async uploadPartCopy(key: string, uploadId: string, partNumber: number, source: string, first: number, last: number): Promise<string> {
    const res = await this.raw.uploadPartCopy(key, uploadId, partNumber, `${first}-${last}`, { sourceKey: source, sourceBucketName: this.bucket }, { timeout: 600_000 });
    return res.etag;
  }

  async complete(key: string, uploadId: string, parts: PartInfo[]): Promise<void> {
    await this.raw.completeMultipartUpload(key, uploadId, parts.map((p) => ({ number: p.number, etag: p.etag })), { timeout: 600_000 });
  }

  /** Abort an upload; one that is already gone is no error. */
  async abort(key: string, uploadId: string): Promise<void> {
    try {
      await this.raw.abortMultipartUpload(key, uploadId);
    } catch (err) {
      if (!isNoSuchUpload(err) && statusOf(err) !== 404) throw err;
    }
  }

  /** Every multipart upload whose key starts with `prefix`, by key then by initiation time. */
  async uploads(prefix: string): Promise<UploadInfo[]> {
    const out: UploadInfo[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const query: Record<string, string | number> = { prefix, 'max-uploads': LIST_MAX };
      if (keyMarker) query['key-marker'] = keyMarker;
      if (idMarker) query['upload-id-marker'] = idMarker;
      const res = await this.raw.listUploads(query);
      for (const u of asList(res.uploads)) out.push({ key: u.name, uploadId: u.uploadId, initiated: new Date(u.initiated) });
      if (!res.isTruncated) break;
      keyMarker = res.nextKeyMarker;
      idMarker = res.nextUploadIdMarker;
    }
    return out;
  }

  /** The uploads of exactly `key`, oldest first. */
  async uploadsOf(key: string): Promise<UploadInfo[]> {
    return (await this.uploads(key)).filter((u) => u.key === key).sort((a, b) => a.initiated.getTime() - b.initiated.getTime());
  }

  /** Every part of an upload, by part number. */
  async parts(key: string, uploadId: string): Promise<PartInfo[]> {
    const out: PartInfo[] = [];
    let marker = 0;
    for (;;) {
      const res = await this.raw.listParts(key, uploadId, { 'max-parts': LIST_MAX, 'part-number-marker': marker });
      for (const p of asList(res.parts as Array<{ PartNumber: string; ETag: string; Size: string }>)) {
        out.push({ number: Number(p.PartNumber), etag: p.ETag, size: Number(p.Size) });
      }
      if (String(res.isTruncated) !== 'true') break;
      marker = Number(res.nextPartNumberMarker);
    }
    return out.sort((a, b) => a.number - b.number);
  }
}
