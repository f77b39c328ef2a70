/**
 * The swift driver: Distribution 2.8's swift layout in one OpenStack Swift container (or Ceph
 * RGW's Swift API), through a hand-written client (swift-client.ts; auth in swift-auth.ts).
 *
 * A path `/a/b` is the object `<prefix>/files/a/b`; files written through a writer are dynamic
 * large objects whose segments live under `<prefix>/segments/` (swift-writer.ts), so a container
 * written by registry:2 is served by Wharf and back. Directories are name prefixes. Moves of a
 * manifest write a new manifest naming the same segments (no byte is copied), other moves are
 * server-side copies; deletes take a manifest's segments with it. Blob GETs may be redirected to
 * temp URLs signed with the account's (or container's) temp-URL key, found or set as Distribution
 * does.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { checkPath, InvalidOffsetError, isValidSegment, PathNotFoundError, type FileInfo, type FileWriter, type StorageDriver } from './driver.js';
import { byteRange, checkReadArgs, eachLimited, emptyStream, listingOf, redirectable, walkListing } from './object-store.js';
import { SwiftConnection } from './swift-client.js';
import { drain, errorText, readBody, SwiftError } from './swift-http.js';
import { parseSwiftOptions, SwiftNames, type SwiftSettings, type TempURLMethod } from './swift-options.js';
import { parseManifest, SwiftWriter, type SwiftWriterContext } from './swift-writer.js';

const NAME = 'swift';
/** Temp URLs live this long, as Distribution's. */
const REDIRECT_EXPIRY_SECONDS = 20 * 60;
const DELETE_CONCURRENCY = 16;
const HEAD_CONCURRENCY = 8;
/** RGW's limit on deletes per request (rgw_delete_multi_obj_max_num) when /info gives none. */
const DEFAULT_BULK_DELETES = 1000;

export interface SwiftDriverContext {
  log?: { warn(obj: object, msg: string): void };
  /** `storage.redirect.disable`: serve blobs ourselves instead of redirecting to temp URLs. */
  redirect?: boolean;
}

/** What the driver learns once connected: bulk deletes and temp URLs. */
interface Capabilities {
  bulkDeletes: number;
  tempURLKey: string | null;
  tempURLMethods: TempURLMethod[];
}

export class SwiftDriver implements StorageDriver, SwiftWriterContext {
  readonly name = NAME;
  readonly settings: SwiftSettings;
  readonly conn: SwiftConnection;
  readonly names: SwiftNames;
  readonly chunkSize: number;
  private readonly redirect: boolean;
  private capabilities: Promise<Capabilities> | null = null;

  /** A driver from `storage.swift` parameters (Distribution's names), warning through `context.log`. */
  static fromOptions(options: Record<string, unknown>, context: SwiftDriverContext = {}): SwiftDriver {
    return new SwiftDriver(parseSwiftOptions(options, (message) => context.log?.warn({ driver: NAME }, message)), context);
  }

  /** fromOptions, then connect: what start-up uses, so bad credentials stop it. */
  static async connected(options: Record<string, unknown>, context: SwiftDriverContext = {}): Promise<SwiftDriver> {
    const driver = SwiftDriver.fromOptions(options, context);
    await driver.connect();
    return driver;
  }

  constructor(settings: SwiftSettings, context: SwiftDriverContext = {}) {
    this.settings = settings;
    this.conn = new SwiftConnection(settings);
    this.names = new SwiftNames(settings.prefix);
    this.chunkSize = settings.chunkSize;
    this.redirect = context.redirect ?? true;
  }

  /** Authenticate, create the container when missing and learn the capabilities (start-up fails here, as in Distribution). */
  async connect(): Promise<void> {
    await this.ready();
  }

  private ready(): Promise<Capabilities> {
    this.capabilities ??= this.discover().catch((err) => {
      this.capabilities = null;
      throw err;
    });
    return this.capabilities;
  }

  private async discover(): Promise<Capabilities> {
    const { conn, settings } = this;
    const container = await conn.expect({ method: 'HEAD', target: settings.container }, [404]);
    if (container.status === 404) await conn.expect({ method: 'PUT', target: settings.container, body: Buffer.alloc(0) });
    const info = await conn.info();
    const bulk = info?.bulk_delete as { max_deletes_per_request?: number } | undefined;
    const caps: Capabilities = {
      bulkDeletes: bulk ? Number(bulk.max_deletes_per_request) || DEFAULT_BULK_DELETES : 0,
      tempURLKey: null,
      // As Distribution: what /info says wins over tempurlmethods and tempurlcontainerkey.
      tempURLMethods: info ? ((info.tempurl?.methods ?? []) as TempURLMethod[]) : settings.tempURLMethods,
    };
    // Distribution compares version strings as text, so Ceph RGW's (16.x) reads as older than Swift
    // 2.3.0 and the account key is used: the one RGW honours.
    const containerKey = info ? String(info.swift?.version ?? '') >= '2.3.0' : settings.tempURLContainerKey;
    if (this.redirect && caps.tempURLMethods.length > 0) caps.tempURLKey = await this.tempURLKey(containerKey);
    return caps;
  }

  /** The temp-URL key: the one set on the container or account, or `secretkey` (or a new one) set there. */
  private async tempURLKey(onContainer: boolean): Promise<string | null> {
    const target = onContainer ? this.settings.container : '';
    const header = onContainer ? 'x-container-meta-temp-url-key' : 'x-account-meta-temp-url-key';
    const { headers } = await this.conn.expect({ method: 'HEAD', target });
    const current = typeof headers[header] === 'string' ? (headers[header] as string) : '';
    const wanted = this.settings.secretKey;
    if (current !== '' && (wanted === undefined || wanted === current)) return current;
    const key = wanted ?? randomBytes(32).toString('hex');
    const res = await this.conn.call({ method: 'POST', target, headers: { [header]: key } });
    await drain(res);
    // Not allowed to set it: redirect with the key that is there, if any.
    return res.statusCode! >= 200 && res.statusCode! <= 299 ? key : current || null;
  }

  async getContent(path: string): Promise<Buffer> {
    checkPath(NAME, path);
    await this.ready();
    const res = await this.conn.call({ method: 'GET', target: this.conn.container(this.names.file(path)) });
    if (res.statusCode === 404) {
      await drain(res);
      throw new PathNotFoundError(NAME, path);
    }
    if (res.statusCode !== 200) throw new SwiftError(res.statusCode ?? 0, 'GET', path, await errorText(res));
    return readBody(res, Number.MAX_SAFE_INTEGER);
  }

  async putContent(path: string, content: Buffer): Promise<void> {
    checkPath(NAME, path);
    await this.ready();
    await this.conn.put(this.names.file(path), content);
  }

  async reader(path: string, offset = 0, length?: number): Promise<Readable> {
    checkReadArgs(NAME, path, offset, length);
    await this.ready();
    const empty = async () => {
      const head = await this.conn.head(this.names.file(path));
      if (!head) throw new PathNotFoundError(NAME, path);
      if (offset > head.size) throw new InvalidOffsetError(NAME, path, offset);
      return emptyStream();
    };
    if (length === 0) return empty();
    const range = byteRange(offset, length);
    const headers: Record<string, string> = range === undefined ? {} : { Range: range };
    const res = await this.conn.call({ method: 'GET', target: this.conn.container(this.names.file(path)), headers });
    if (res.statusCode === 206 || (res.statusCode === 200 && headers.Range === undefined)) return res;
    if (res.statusCode === 200) {
      res.destroy();
      throw new SwiftError(200, 'GET', path, `the server ignored Range: ${headers.Range}`);
    }
    const status = res.statusCode ?? 0;
    const text = await errorText(res);
    if (status === 404) throw new PathNotFoundError(NAME, path);
    // The range starts at or past the end: empty at the end, an error beyond it.
    if (status === 416) return empty();
    throw new SwiftError(status, 'GET', path, text);
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    checkPath(NAME, path);
    await this.ready();
    return SwiftWriter.open(this, path, append);
  }

  async stat(path: string): Promise<FileInfo> {
    checkPath(NAME, path, true);
    if (path === '/') return { path, size: 0, modTime: new Date(), isDir: true };
    await this.ready();
    const head = await this.conn.head(this.names.file(path));
    if (head) return { path, size: head.size, modTime: head.modTime, isDir: false };
    const below = await this.conn.listPage({ prefix: this.names.children(path), limit: 1 });
    if (below.length > 0) return { path, size: 0, modTime: new Date(), isDir: true };
    throw new PathNotFoundError(NAME, path);
  }

  /**
   * The direct children of a directory, sorted. Listings give a manifest's own size (0), so with
   * `sizes` every empty-looking file is asked for its real size.
   */
  private async entries(path: string, sizes: boolean): Promise<FileInfo[]> {
    await this.ready();
    const prefix = this.names.children(path);
    const base = path === '/' ? '' : path;
    const files = new Map<string, FileInfo>();
    const dirs = new Set<string>();
    for await (const entry of this.conn.list({ prefix, delimiter: '/' })) {
      if ('subdir' in entry) {
        const name = entry.subdir.slice(prefix.length, -1);
        if (isValidSegment(name)) dirs.add(name);
      } else {
        const name = entry.name.slice(prefix.length);
        if (isValidSegment(name)) files.set(name, { path: `${base}/${name}`, size: entry.bytes, modTime: entry.modTime, isDir: false });
      }
    }
    if (sizes) {
      const unsure = [...files.values()].filter((f) => f.size === 0);
      await eachLimited(unsure, HEAD_CONCURRENCY, async (f) => {
        const head = await this.conn.head(this.names.file(f.path));
        if (head) f.size = head.size;
      });
    }
    return listingOf(NAME, path, base, files, dirs);
  }

  async list(path: string): Promise<string[]> {
    checkPath(NAME, path, true);
    return (await this.entries(path, false)).map((e) => e.path);
  }

  async move(source: string, dest: string): Promise<void> {
    checkPath(NAME, source);
    checkPath(NAME, dest);
    await this.ready();
    const from = this.names.file(source);
    const to = this.names.file(dest);
    const [head, replaced] = await Promise.all([this.conn.head(from), this.conn.head(to)]);
    if (!head) throw new PathNotFoundError(NAME, source);
    if (head.manifest) {
      // The same segments under a new name: nothing is copied.
      await this.conn.put(to, Buffer.alloc(0), { 'X-Object-Manifest': head.manifest });
    } else if (!(await this.conn.copy(from, to))) {
      throw new PathNotFoundError(NAME, source);
    }
    await this.conn.delete(from);
    if (replaced?.manifest && replaced.manifest !== head.manifest) await this.removeSegments(replaced.manifest);
  }

  /** Delete a file, or every file below a directory, with the segments of the manifests among them. */
  async delete(path: string): Promise<void> {
    checkPath(NAME, path);
    await this.ready();
    const object = this.names.file(path);
    const below: Array<{ name: string; bytes: number }> = [];
    const listing = (async () => {
      for await (const e of this.conn.list({ prefix: `${object}/` })) if ('name' in e) below.push(e);
    })();
    const [self] = await Promise.all([this.conn.head(object), listing]);
    if (!self && below.length === 0) throw new PathNotFoundError(NAME, path);
    const manifests: string[] = self?.manifest ? [self.manifest] : [];
    // Manifests are zero-byte objects: only those need a look.
    await eachLimited(
      below.filter((e) => e.bytes === 0),
      HEAD_CONCURRENCY,
      async (e) => {
        const head = await this.conn.head(e.name);
        if (head?.manifest) manifests.push(head.manifest);
      },
    );
    const container = this.settings.container;
    // Manifests go first, so no file is ever seen with some of its segments missing.
    await this.removeAll([...(self ? [`${container}/${object}`] : []), ...below.map((e) => `${container}/${e.name}`)]);
    for (const manifest of manifests) await this.removeSegments(manifest);
  }

  async removeSegments(manifest: string): Promise<void> {
    const { container, prefix } = parseManifest(manifest);
    // A manifest pointing anywhere else (another container, files/) is not ours to empty.
    if (container !== this.settings.container || !this.names.isSegments(prefix)) return;
    const names: string[] = [];
    for await (const e of this.conn.list({ prefix, container })) if ('name' in e) names.push(`${container}/${e.name}`);
    await this.removeAll(names);
  }

  /** Delete objects named `<container>/<name>`, by bulk delete when the cluster offers it; missing ones are fine. */
  private async removeAll(names: string[]): Promise<void> {
    if (names.length === 0) return;
    const { bulkDeletes } = await this.ready();
    if (bulkDeletes > 0 && names.length > 1) return this.conn.bulkDelete(names, bulkDeletes);
    await eachLimited(names, DELETE_CONCURRENCY, async (qualified) => {
      const { container, prefix: name } = parseManifest(qualified);
      await this.conn.delete(name, container);
    });
  }

  async redirectURL(method: string, path: string): Promise<string | null> {
    if (!redirectable(NAME, path, this.redirect, method)) return null;
    const caps = await this.ready();
    // A temp URL for GET serves HEAD too.
    if (caps.tempURLKey === null || !caps.tempURLMethods.includes('GET')) return null;
    const expires = Math.floor(Date.now() / 1000) + REDIRECT_EXPIRY_SECONDS;
    return this.conn.tempURL(this.names.file(path), 'GET', caps.tempURLKey, expires, this.settings.accessKey);
  }

  async walk(path: string, visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip'): Promise<void> {
    return walkListing(NAME, path, (dir) => this.entries(dir, true), visit);
  }
}
