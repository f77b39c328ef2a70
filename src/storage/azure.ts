/**
 * The azure driver: Distribution's azure layout in an Azure Blob Storage container (or Azurite).
 *
 * Blob names: without `rootdirectory` a path `/a/b` is the blob `/a/b`, leading '/' included,
 * exactly as Distribution 2.8 names it (its driver has no rootdirectory), so a container written
 * by registry:2 is served by Wharf and back. With `rootdirectory: /r` it is `r/a/b`, as
 * Distribution 3 names blobs (3.x trims the leading '/'; a 3.x container written without a
 * rootdirectory is read with `rootdirectory: /`). Directories are name prefixes.
 *
 * Files written by putContent are block blobs (one Put Blob: readers see the old or the new
 * content); writers make append blobs (azure-writer.ts); moves are server-side copies polled
 * until done, then a delete of the source; blob GETs may be redirected to read-only SAS URLs.
 */
import type { Readable } from 'node:stream';
import type { BlobItem, ContainerClient } from '@azure/storage-blob';
import { checkPath, isValidSegment, InvalidOffsetError, PathNotFoundError, StorageError, type FileInfo, type FileWriter, type StorageDriver } from './driver.js';
import { makeAzureClients, parseAzureOptions, type AzureSettings, type SasSigner } from './azure-options.js';
import { AzureWriter, codeOf, deleteBlob, isNotFound, statusOf } from './azure-writer.js';
import { checkReadArgs, eachLimited, emptyStream, listingOf, readStream, redirectable, walkListing } from './object-store.js';

const NAME = 'azure';
/** SAS redirect URLs live this long, as Distribution's. */
const REDIRECT_EXPIRY_MS = 20 * 60_000;
const LIST_PAGE = 1000;
const DELETE_CONCURRENCY = 16;

export interface AzureDriverContext {
  log?: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
  /** `storage.redirect.disable`: serve blobs ourselves instead of redirecting to SAS URLs. */
  redirect?: boolean;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class AzureDriver implements StorageDriver {
  readonly name = NAME;
  readonly settings: AzureSettings;
  private readonly redirect: boolean;
  private readonly log?: AzureDriverContext['log'];
  private clients: Promise<{ container: ContainerClient; signer: SasSigner }> | null = null;

  /** A driver from `storage.azure` parameters (Distribution's names), warning through `context.log`. */
  static fromOptions(options: Record<string, unknown>, context: AzureDriverContext = {}): AzureDriver {
    return new AzureDriver(parseAzureOptions(options, (message) => context.log?.warn({ driver: NAME }, message)), context);
  }

  constructor(settings: AzureSettings, context: AzureDriverContext = {}) {
    this.settings = settings;
    this.log = context.log;
    this.redirect = context.redirect ?? true;
  }

  /** The blob name of a path. */
  key(path: string): string {
    return this.settings.prefix + path.slice(1);
  }

  /** The name prefix of a directory's children. */
  private dirPrefix(path: string): string {
    return path === '/' ? this.settings.prefix : `${this.key(path)}/`;
  }

  /**
   * The SDK clients, made on first use; the container is created then when it is missing, as
   * Distribution 2.8 does. A credential that may not create containers (403) is fine as long as
   * the container exists.
   */
  private ready(): Promise<{ container: ContainerClient; signer: SasSigner }> {
    this.clients ??= (async () => {
      const { service, signer } = await makeAzureClients(this.settings);
      const container = service.getContainerClient(this.settings.container);
      try {
        await container.createIfNotExists();
      } catch (err) {
        if (statusOf(err) !== 403) throw err;
        this.log?.debug({ driver: NAME, status: 403 }, 'could not create the container: using it as it is');
      }
      return { container, signer };
    })().catch((err) => {
      this.clients = null;
      throw err;
    });
    return this.clients;
  }

  /** The container client, once ready. */
  async containerClient(): Promise<ContainerClient> {
    return (await this.ready()).container;
  }

  async getContent(path: string): Promise<Buffer> {
    checkPath(NAME, path);
    const container = await this.containerClient();
    try {
      const res = await container.getBlobClient(this.key(path)).download(0);
      return await readStream(res.readableStreamBody as Readable);
    } catch (err) {
      if (isNotFound(err)) throw new PathNotFoundError(NAME, path);
      throw err;
    }
  }

  async putContent(path: string, content: Buffer): Promise<void> {
    checkPath(NAME, path);
    const container = await this.containerClient();
    const name = this.key(path);
    const blob = container.getBlockBlobClient(name);
    try {
      await blob.upload(content, content.length);
    } catch (err) {
      // Azure cannot replace an append blob (a writer's file) with a block blob in one request.
      if (statusOf(err) !== 409) throw err;
      await deleteBlob(container, name);
      await blob.upload(content, content.length);
    }
  }

  async reader(path: string, offset = 0, length?: number): Promise<Readable> {
    checkReadArgs(NAME, path, offset, length);
    const container = await this.containerClient();
    const empty = async () => {
      const { size } = await this.stat(path).then((info) => {
        if (info.isDir) throw new PathNotFoundError(NAME, path);
        return info;
      });
      if (offset > size) throw new InvalidOffsetError(NAME, path, offset);
      return emptyStream();
    };
    if (length === 0) return empty();
    try {
      const res = await container.getBlobClient(this.key(path)).download(offset, length);
      return res.readableStreamBody as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new PathNotFoundError(NAME, path);
      // The range starts at or past the end: empty at the end, an error beyond it.
      if (statusOf(err) === 416) return empty();
      throw err;
    }
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    checkPath(NAME, path);
    const container = await this.containerClient();
    const name = this.key(path);
    const ctx = { name: NAME, container };
    return append ? AzureWriter.resume(ctx, name, path) : AzureWriter.fresh(ctx, name, path);
  }

  async stat(path: string): Promise<FileInfo> {
    checkPath(NAME, path, true);
    if (path === '/') return { path, size: 0, modTime: new Date(), isDir: true };
    const container = await this.containerClient();
    try {
      const props = await container.getBlobClient(this.key(path)).getProperties();
      return { path, size: props.contentLength ?? 0, modTime: props.lastModified ?? new Date(), isDir: false };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const page = await container.listBlobsFlat({ prefix: `${this.key(path)}/` }).byPage({ maxPageSize: 1 }).next();
    if (!page.done && page.value.segment.blobItems.length > 0) return { path, size: 0, modTime: new Date(), isDir: true };
    throw new PathNotFoundError(NAME, path);
  }

  /** The direct children of a directory with what the listing tells about them, sorted (hierarchical listing, paged). */
  private async entries(path: string): Promise<FileInfo[]> {
    const container = await this.containerClient();
    const prefix = this.dirPrefix(path);
    const base = path === '/' ? '' : path;
    const files = new Map<string, FileInfo>();
    const dirs = new Set<string>();
    for await (const page of container.listBlobsByHierarchy('/', { prefix }).byPage({ maxPageSize: LIST_PAGE })) {
      for (const b of page.segment.blobItems) {
        const name = b.name.slice(prefix.length);
        if (isValidSegment(name)) files.set(name, fileInfo(`${base}/${name}`, b));
      }
      for (const p of page.segment.blobPrefixes ?? []) {
        const name = p.name.slice(prefix.length, -1);
        if (isValidSegment(name)) dirs.add(name);
      }
    }
    return listingOf(NAME, path, base, files, dirs);
  }

  async list(path: string): Promise<string[]> {
    checkPath(NAME, path, true);
    return (await this.entries(path)).map((e) => e.path);
  }

  /**
   * A server-side copy (Copy Blob, which keeps the source's blob type), polled as Distribution
   * polls it (`max_retries` polls, the n-th after n × `retry_delay`), then the source is deleted.
   */
  async move(source: string, dest: string): Promise<void> {
    checkPath(NAME, source);
    checkPath(NAME, dest);
    const container = await this.containerClient();
    const from = container.getBlobClient(this.key(source));
    const to = container.getBlobClient(this.key(dest));
    const start = async () => {
      const poller = await to.beginCopyFromURL(from.url);
      const state = poller.getOperationState() as { isCompleted?: boolean; copyId?: string };
      return { status: state.isCompleted ? 'success' : 'pending', copyId: state.copyId };
    };
    let started: { status: string | undefined; copyId: string | undefined };
    try {
      started = await start();
    } catch (err) {
      if (isNotFound(err) || codeOf(err) === 'CannotVerifyCopySource') throw new PathNotFoundError(NAME, source);
      // Azure copies only onto a blob of the source's type: replace a destination of another type.
      if (statusOf(err) !== 409 || codeOf(err) === 'PendingCopyOperation') throw err;
      await deleteBlob(container, to.name);
      started = await start().catch((again: unknown) => {
        throw isNotFound(again) ? new PathNotFoundError(NAME, source) : again;
      });
    }
    let { status, copyId } = started;
    for (let poll = 1; status === 'pending'; poll++) {
      if (this.settings.maxRetries === -1 || poll > this.settings.maxRetries) {
        if (copyId) await to.abortCopyFromURL(copyId).catch(() => undefined);
        throw new StorageError(`${NAME}: the copy of ${source} to ${dest} did not finish after ${Math.max(0, this.settings.maxRetries)} polls: aborted`, NAME, source);
      }
      await sleep(this.settings.retryDelayMs * poll);
      const props = await to.getProperties();
      status = props.copyStatus;
      copyId = props.copyId ?? copyId;
      if (status === 'failed' || status === 'aborted') {
        throw new StorageError(`${NAME}: the copy of ${source} to ${dest} ${status}: ${props.copyStatusDescription ?? copyId}`, NAME, source);
      }
    }
    if (status !== undefined && status !== 'success') throw new StorageError(`${NAME}: the copy of ${source} to ${dest} is ${status}`, NAME, source);
    await deleteBlob(container, from.name);
  }

  /** Delete a blob and every blob below its name + '/' (flat listing, deletes in parallel). */
  async delete(path: string): Promise<void> {
    checkPath(NAME, path);
    const container = await this.containerClient();
    const name = this.key(path);
    const below = async (): Promise<number> => {
      let count = 0;
      for await (const page of container.listBlobsFlat({ prefix: `${name}/` }).byPage({ maxPageSize: LIST_PAGE })) {
        await eachLimited(page.segment.blobItems, DELETE_CONCURRENCY, async (b) => {
          if (await deleteBlob(container, b.name)) count++;
        });
      }
      return count;
    };
    const [self, children] = await Promise.all([deleteBlob(container, name), below()]);
    if (!self && children === 0) throw new PathNotFoundError(NAME, path);
  }

  async redirectURL(method: string, path: string): Promise<string | null> {
    if (!redirectable(NAME, path, this.redirect, method)) return null;
    const { container, signer } = await this.ready();
    const blob = container.getBlobClient(this.key(path));
    const sas = await signer.sign(this.settings.container, blob.name, new Date(Date.now() + REDIRECT_EXPIRY_MS));
    return `${blob.url}?${sas}`;
  }

  async walk(path: string, visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip'): Promise<void> {
    return walkListing(NAME, path, (dir) => this.entries(dir), visit);
  }
}

function fileInfo(path: string, b: BlobItem): FileInfo {
  return { path, size: b.properties.contentLength ?? 0, modTime: b.properties.lastModified ?? new Date(), isDir: false };
}
