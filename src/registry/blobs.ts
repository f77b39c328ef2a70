/**
 * Blobs: content-addressed data shared by all repositories (`blobs/…/data`), made visible
 * to one repository by a link (`<name>/_layers/…/link`). Deleting through the API removes
 * only the link; garbage collection removes data.
 */
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isNotFound, type RedirectClient, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import type { RegistryCache } from './cache.js';
import { fail } from './errors.js';
import { BlobFence } from './gc-fence.js';

export interface BlobDescriptor {
  digest: string;
  size: number;
}

export class BlobStore {
  constructor(
    private readonly driver: StorageDriver,
    private readonly cache: RegistryCache,
    /** Online GC's meeting point: every lookup and link of a digest goes through it. */
    readonly fence: BlobFence = new BlobFence(),
  ) {}

  /** Size of the global blob, or null when it does not exist. */
  async statGlobal(digest: string): Promise<BlobDescriptor | null> {
    await this.fence.pass(digest);
    return this.statStored(digest);
  }

  /** statGlobal once the fence was passed. */
  private async statStored(digest: string): Promise<BlobDescriptor | null> {
    const cached = await this.cache.descriptors?.blob(digest);
    if (cached) return cached;
    try {
      const info = await this.driver.stat(pathFor({ kind: 'blobData', digest }));
      if (info.isDir) return null;
      const desc = { digest, size: info.size };
      void this.cache.descriptors?.setBlob(desc);
      return desc;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** Whether storage has `name`'s link to `digest` (a layer or config pushed to or mounted into it). */
  private async linkedInStorage(name: string, digest: string): Promise<boolean> {
    return (await readLink(this.driver, pathFor({ kind: 'layerLink', name, digest }))) === digest;
  }

  /** The blob as seen from repository `name`, or null. */
  async stat(name: string, digest: string): Promise<BlobDescriptor | null> {
    await this.fence.pass(digest);
    const cached = await this.cache.descriptors?.linked(name, digest);
    if (cached) return cached;
    const [linked, desc] = await Promise.all([this.linkedInStorage(name, digest), this.statStored(digest)]);
    if (!linked) this.cache.descriptors?.dropStale(name, digest);
    if (!linked || !desc) return null;
    void this.cache.descriptors?.setLinked(name, desc);
    return desc;
  }

  async statOrFail(name: string, digest: string): Promise<BlobDescriptor> {
    return (await this.stat(name, digest)) ?? fail('BLOB_UNKNOWN', undefined, digest);
  }

  async open(digest: string, offset: number, length: number): Promise<Readable> {
    return this.driver.reader(pathFor({ kind: 'blobData', digest }), offset, length);
  }

  /** Stream a byte range of the blob into `destination` and end it. */
  async send(digest: string, offset: number, length: number, destination: Writable): Promise<void> {
    const path = pathFor({ kind: 'blobData', digest });
    if (this.driver.sendTo) return this.driver.sendTo(path, offset, length, destination);
    await pipeline(await this.driver.reader(path, offset, length), destination);
  }

  async redirectURL(method: string, digest: string, client?: RedirectClient): Promise<string | null> {
    return this.driver.redirectURL(method, pathFor({ kind: 'blobData', digest }), client);
  }

  /** Link `digest` into `name`; `size` (when known) goes to the descriptor cache at once. */
  async link(name: string, digest: string, size?: number): Promise<void> {
    this.fence.touch(digest);
    await this.driver.putContent(pathFor({ kind: 'layerLink', name, digest }), Buffer.from(digest));
    if (size !== undefined) await this.cache.descriptors?.setLinked(name, { digest, size });
  }

  /** Remove the repository's link, then its cached descriptor. Fails with BLOB_UNKNOWN when it is not linked. */
  async unlink(name: string, digest: string): Promise<void> {
    // Storage decides, not the cache: a stale cached link is cleared and answered 404.
    if (!(await this.linkedInStorage(name, digest))) {
      await this.cache.descriptors?.forgetLinked(name, digest);
      fail('BLOB_UNKNOWN', undefined, digest);
    }
    try {
      await this.driver.delete(pathFor({ kind: 'layerLink', name, digest }));
    } catch (err) {
      if (isNotFound(err)) fail('BLOB_UNKNOWN', undefined, digest);
      throw err;
    } finally {
      await this.cache.descriptors?.forgetLinked(name, digest);
    }
  }

  /** Cross-repository mount: link `digest` into `name` when `from` has it. */
  async mount(name: string, from: string, digest: string): Promise<BlobDescriptor | null> {
    const desc = await this.stat(from, digest);
    if (!desc) return null;
    await this.link(name, digest, desc.size);
    return desc;
  }

  /** Store small content (a manifest) as a global blob, atomically. */
  async putGlobal(digest: string, content: Buffer): Promise<void> {
    this.fence.touch(digest);
    const existing = await this.statGlobal(digest);
    if (existing && existing.size === content.length) return;
    await this.driver.putContent(pathFor({ kind: 'blobData', digest }), content);
  }

  async getGlobal(digest: string): Promise<Buffer> {
    return this.driver.getContent(pathFor({ kind: 'blobData', digest }));
  }
}

/** A link file's digest, or null when the link is missing. */
export async function readLink(driver: StorageDriver, path: string): Promise<string | null> {
  try {
    return (await driver.getContent(path)).toString('utf8').trim();
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}
