/**
 * The gcs driver: Distribution's gcs layout in a Google Cloud Storage bucket, through
 * @google-cloud/storage 7 (JSON API) for objects and listings, and plain HTTP for resumable
 * upload sessions (gcs-session.ts), as Distribution's driver does.
 *
 * Object names are Distribution's: a path `/a/b` is `<rootdirectory>/a/b` with the root's
 * slashes trimmed, and `a/b` without a rootdirectory, so a bucket written by registry:2 is served
 * by Wharf and back. Directories are name prefixes. putContent is one upload (readers see the old
 * or the new object); writers keep unfinished uploads in Distribution's format (gcs-writer.ts),
 * which stat, list and walk report with their size and readers complete first; moves are
 * server-side rewrites then a delete; blob GETs may be redirected to V4 signed URLs.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Storage, type Bucket, type File } from '@google-cloud/storage';
import { checkPath, isValidSegment, InvalidOffsetError, PathNotFoundError, StorageError, type FileInfo, type FileWriter, type StorageDriver } from './driver.js';
import { ServiceAccountTokens } from './gcs-auth.js';
import { mediaGet, type MediaContext } from './gcs-media.js';
import { parseGcsOptions, type GcsSettings } from './gcs-options.js';
import { BLOB_TYPE, fileSize, GcsWriter, isUploadState, materialize, SESSION_TYPE, type ObjectMeta, type WriterContext } from './gcs-writer.js';
import { checkReadArgs, eachLimited, emptyStream, listingOf, readStream, redirectable, walkListing } from './object-store.js';
import { OpenWriters } from './object-writer.js';

const NAME = 'gcs';
const GOOGLE_ENDPOINT = 'https://storage.googleapis.com';
/** Signed redirect URLs live this long, as Distribution's. */
const REDIRECT_EXPIRY_MS = 20 * 60_000;
const LIST_PAGE = 1000;
const DELETE_CONCURRENCY = 16;

export interface GcsDriverContext {
  log?: { warn(obj: object, msg: string): void };
  /** `storage.redirect.disable`: serve blobs ourselves instead of redirecting to signed URLs. */
  redirect?: boolean;
}

interface ApiObject {
  name?: string;
  size?: string | number;
  contentType?: string;
  metadata?: Record<string, string | null>;
  updated?: string;
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function metaOf(o: ApiObject): ObjectMeta {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.metadata ?? {})) if (typeof v === 'string') metadata[k] = v;
  return { size: Number(o.size ?? 0), contentType: o.contentType ?? '', metadata, updated: o.updated ? new Date(o.updated) : new Date() };
}

/** At most `max` operations at once, as Distribution's regulator (`maxconcurrency`). */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly max: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active < this.max) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

export class GcsDriver implements StorageDriver, WriterContext, MediaContext {
  readonly name = NAME;
  readonly settings: GcsSettings;
  readonly bucket: string;
  readonly chunkSize: number;
  readonly apiEndpoint: string;
  readonly jsonBase: string;
  readonly userAgent: string;
  readonly openWriters = new OpenWriters<GcsWriter>();
  private readonly storage: Storage;
  private readonly objects: Bucket;
  /** Signs redirect URLs: a client holding the service-account key, or the default credentials' client. */
  private readonly signer: Bucket;
  private readonly tokens: ServiceAccountTokens | null;
  private readonly limiter: Limiter;
  private readonly redirect: boolean;
  private readonly log?: GcsDriverContext['log'];
  private bucketChecked: Promise<void> | null = null;
  private warnedSigning = false;

  /** A driver from `storage.gcs` parameters (Distribution's names), warning through `context.log`. */
  static fromOptions(options: Record<string, unknown>, context: GcsDriverContext = {}, env: NodeJS.ProcessEnv = process.env): GcsDriver {
    return new GcsDriver(parseGcsOptions(options, (message) => context.log?.warn({ driver: NAME }, message), env), context);
  }

  constructor(settings: GcsSettings, context: GcsDriverContext = {}) {
    this.settings = settings;
    this.bucket = settings.bucket;
    this.chunkSize = settings.chunkSize;
    this.apiEndpoint = settings.endpoint ?? GOOGLE_ENDPOINT;
    this.jsonBase = `${this.apiEndpoint}/storage/v1`;
    this.userAgent = settings.userAgent ?? 'wharf';
    this.redirect = context.redirect ?? true;
    this.log = context.log;
    this.limiter = new Limiter(settings.maxConcurrency);
    const common = { apiEndpoint: settings.endpoint, userAgent: settings.userAgent };
    const creds = settings.credentials;
    if (creds.kind === 'key') {
      this.tokens = new ServiceAccountTokens(creds.key, this.userAgent);
      const authClient = this.tokens.sdkClient() as unknown as NonNullable<ConstructorParameters<typeof Storage>[0]>['authClient'];
      this.storage = new Storage({ ...common, projectId: creds.key.projectId, authClient, useAuthWithCustomEndpoint: true });
      // Used only to sign URLs, locally with the key: it never sends a request.
      const signing = new Storage({ ...common, projectId: creds.key.projectId, credentials: { client_email: creds.key.clientEmail, private_key: creds.key.privateKey } });
      this.signer = signing.bucket(this.bucket);
      this.fixBaseUrl(signing);
    } else {
      this.tokens = null;
      this.storage = new Storage(common);
      this.signer = this.storage.bucket(this.bucket);
    }
    this.fixBaseUrl(this.storage);
    this.objects = this.storage.bucket(this.bucket);
  }

  /** The SDK addresses the JSON API at STORAGE_EMULATOR_HOST's root; Cloud Storage serves it under /storage/v1. */
  private fixBaseUrl(storage: Storage): void {
    if (this.settings.endpoint) storage.baseUrl = `${this.settings.endpoint}/storage/v1`;
  }

  /** The object name of a path: Distribution's pathToKey. */
  key(path: string): string {
    return this.settings.prefix + path.slice(1);
  }

  async authHeaders(): Promise<Record<string, string>> {
    if (this.tokens) return { authorization: `Bearer ${await this.tokens.token()}` };
    if (this.settings.endpoint) return {}; // an emulator with default credentials: unauthenticated, as the SDK does
    return (await this.storage.authClient.getRequestHeaders()) as Record<string, string>;
  }

  forgetToken(): void {
    this.tokens?.forget();
  }

  /**
   * Every operation first checks, once, that the bucket exists (Distribution expects it to): a
   * missing bucket would otherwise look like missing files. A key that may not read bucket
   * metadata (403, e.g. roles/storage.objectAdmin) is fine.
   */
  private run<T>(work: () => Promise<T>): Promise<T> {
    if (!this.bucketChecked) {
      this.bucketChecked = this.objects.getMetadata().then(
        () => undefined,
        (err) => {
          if (statusOf(err) === 403) return;
          this.bucketChecked = null; // checked again by the next operation
          if (statusOf(err) === 404) throw new Error(`storage.gcs.bucket: bucket "${this.bucket}" does not exist`);
          throw err;
        },
      );
      this.bucketChecked.catch(() => undefined); // awaited below; not an unhandled rejection while queued
    }
    const checked = this.bucketChecked;
    return this.limiter.run(async () => {
      try {
        await checked;
        return await work();
      } catch (err) {
        if (statusOf(err) === 401) this.forgetToken(); // refused (revoked, or the clock moved): a new token next time
        throw err;
      }
    });
  }

  private file(objectName: string): File {
    return this.objects.file(objectName);
  }

  async head(objectName: string): Promise<ObjectMeta | null> {
    try {
      const [m] = await this.file(objectName).getMetadata();
      return metaOf(m as ApiObject);
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  async save(objectName: string, content: Buffer, contentType: string, metadata?: Record<string, string>): Promise<void> {
    // The MD5 makes the store refuse a body that arrived damaged, as Distribution's putContent does.
    const md5Hash = createHash('md5').update(content).digest('base64');
    await this.file(objectName).save(content, { resumable: false, validation: false, metadata: { contentType, md5Hash, ...(metadata ? { metadata } : {}) } });
  }

  async remove(objectName: string): Promise<boolean> {
    try {
      await this.file(objectName).delete();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }

  async download(objectName: string): Promise<Readable> {
    return (await this.open(objectName)).stream;
  }

  private open(objectName: string, start?: number, end?: number): Promise<{ stream: Readable; contentType: string }> {
    return mediaGet(this, objectName, start, end);
  }

  /** A reader of the file at `path`; an unfinished upload is completed first (its bytes cannot be read otherwise). */
  private async readFile(path: string, start?: number, end?: number): Promise<Readable> {
    const name = this.key(path);
    for (let attempt = 0; ; attempt++) {
      let opened: { stream: Readable; contentType: string };
      try {
        opened = await this.open(name, start, end);
      } catch (err) {
        if (statusOf(err) === 404) throw new PathNotFoundError(NAME, path);
        if (statusOf(err) !== 416) throw err;
        // The range starts at or past the end of what the object holds: empty at the end, an error beyond it.
        const m = await this.head(name);
        if (!m) throw new PathNotFoundError(NAME, path);
        if (!isUploadState(m) || attempt > 0) {
          if ((start ?? 0) > fileSize(m)) throw new InvalidOffsetError(NAME, path, start ?? 0);
          return emptyStream();
        }
        await materialize(this, name, path);
        continue;
      }
      if (opened.contentType.split(';')[0].trim().toLowerCase() !== SESSION_TYPE) return opened.stream;
      opened.stream.destroy();
      if (attempt > 0) throw new StorageError(`${NAME}: ${path} is still an unfinished upload after completing it`, NAME, path);
      await materialize(this, name, path);
    }
  }

  async getContent(path: string): Promise<Buffer> {
    checkPath(NAME, path);
    return this.run(async () => readStream(await this.readFile(path)));
  }

  async putContent(path: string, content: Buffer): Promise<void> {
    checkPath(NAME, path);
    await this.run(() => this.save(this.key(path), content, BLOB_TYPE));
  }

  async reader(path: string, offset = 0, length?: number): Promise<Readable> {
    checkReadArgs(NAME, path, offset, length);
    return this.run(async () => {
      if (length === 0) {
        const info = await this.statOf(path);
        if (info.isDir) throw new PathNotFoundError(NAME, path);
        if (offset > info.size) throw new InvalidOffsetError(NAME, path, offset);
        return emptyStream();
      }
      const ranged = offset > 0 || length !== undefined;
      return this.readFile(path, ranged ? offset : undefined, length === undefined ? undefined : offset + length - 1);
    });
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    checkPath(NAME, path);
    const name = this.key(path);
    return this.run(async () => (append ? GcsWriter.resume(this, name, path) : GcsWriter.fresh(this, name, path)));
  }

  async stat(path: string): Promise<FileInfo> {
    checkPath(NAME, path, true);
    return this.run(() => this.statOf(path));
  }

  private async statOf(path: string): Promise<FileInfo> {
    if (path === '/') return { path, size: 0, modTime: new Date(), isDir: true };
    const m = await this.head(this.key(path));
    if (m) return { path, size: fileSize(m), modTime: m.updated, isDir: false };
    const [files, , response] = await this.objects.getFiles({ prefix: `${this.key(path)}/`, maxResults: 1, autoPaginate: false });
    if (files.length > 0 || ((response as { prefixes?: string[] } | undefined)?.prefixes?.length ?? 0) > 0) return { path, size: 0, modTime: new Date(), isDir: true };
    throw new PathNotFoundError(NAME, path);
  }

  /** The direct children of a directory with what the listing tells about them, sorted (paged, with '/' as delimiter). */
  private async entries(path: string): Promise<FileInfo[]> {
    const prefix = path === '/' ? this.settings.prefix : `${this.key(path)}/`;
    const base = path === '/' ? '' : path;
    const files = new Map<string, FileInfo>();
    const dirs = new Set<string>();
    let pageToken: string | undefined;
    do {
      const [page, next, response] = await this.objects.getFiles({ prefix, delimiter: '/', maxResults: LIST_PAGE, pageToken, autoPaginate: false });
      for (const f of page) {
        const name = f.name.slice(prefix.length);
        const m = metaOf(f.metadata as ApiObject);
        if (isValidSegment(name)) files.set(name, { path: `${base}/${name}`, size: fileSize(m), modTime: m.updated, isDir: false });
      }
      for (const p of (response as { prefixes?: string[] } | undefined)?.prefixes ?? []) {
        const name = p.slice(prefix.length, -1);
        if (isValidSegment(name)) dirs.add(name);
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
    return listingOf(NAME, path, base, files, dirs);
  }

  async list(path: string): Promise<string[]> {
    checkPath(NAME, path, true);
    return (await this.run(() => this.entries(path))).map((e) => e.path);
  }

  /** A server-side rewrite (the SDK repeats it until done), then the source is deleted. */
  async move(source: string, dest: string): Promise<void> {
    checkPath(NAME, source);
    checkPath(NAME, dest);
    await this.run(async () => {
      const from = this.key(source);
      const m = await this.head(from);
      if (!m) throw new PathNotFoundError(NAME, source);
      // Copying an unfinished upload would copy its state (and session) rather than its bytes.
      if (isUploadState(m)) await materialize(this, from, source);
      try {
        await this.file(from).copy(this.file(this.key(dest)));
      } catch (err) {
        if (statusOf(err) === 404) throw new PathNotFoundError(NAME, source);
        throw err;
      }
      await this.remove(from);
    });
  }

  /** Delete the object and every object below its name + '/' (deletes in parallel). */
  async delete(path: string): Promise<void> {
    checkPath(NAME, path);
    await this.run(async () => {
      const name = this.key(path);
      const [self, below] = await Promise.all([this.remove(name), this.deleteBelow(`${name}/`)]);
      if (!self && !below) throw new PathNotFoundError(NAME, path);
    });
  }

  private async deleteBelow(prefix: string): Promise<boolean> {
    let any = false;
    let pageToken: string | undefined;
    do {
      const [page, next] = await this.objects.getFiles({ prefix, maxResults: LIST_PAGE, pageToken, autoPaginate: false });
      await eachLimited(page, DELETE_CONCURRENCY, async (f) => {
        if (await this.remove(f.name)) any = true;
      });
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
    return any;
  }

  /**
   * A V4 signed GET URL valid 20 minutes, signed locally with the service-account key, or by the
   * IAM Credentials API with default credentials (which needs iam.serviceAccounts.signBlob, as
   * Distribution documents). A signing failure serves the blob through Wharf instead.
   */
  async redirectURL(method: string, path: string): Promise<string | null> {
    // A V4 signature covers the method, and Cloud Storage's signed URLs for reads are GETs.
    if (!redirectable(NAME, path, this.redirect, method, ['GET'])) return null;
    try {
      const [url] = await this.signer.file(this.key(path)).getSignedUrl({ version: 'v4', action: 'read', expires: Date.now() + REDIRECT_EXPIRY_MS });
      return url;
    } catch (err) {
      if (!this.warnedSigning) {
        this.warnedSigning = true;
        this.log?.warn({ driver: NAME, err: { message: (err as Error).message } }, 'cannot sign redirect URLs: serving blobs through Wharf');
      }
      return null;
    }
  }

  async walk(path: string, visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip'): Promise<void> {
    return walkListing(NAME, path, (dir) => this.run(() => this.entries(dir)), visit);
  }
}
