/**
 * The registry service: the spec's rules over a storage driver. The server layer calls
 * only this; nothing here knows about HTTP.
 */
import { isNotFound, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { BlobStore } from './blobs.js';
import { DEFAULT_CACHE_OPTIONS, RegistryCache, type CacheOptions } from './cache.js';
import { listRepositories } from './catalog.js';
import { fail } from './errors.js';
import { ManifestStore, type ManifestPolicy } from './manifests.js';
import { ReferrersIndex } from './referrers.js';
import { BlobFence } from './gc-fence.js';
import { TagStore } from './tags.js';
import { UploadStore, type UploadObserver } from './uploads.js';

export interface RegistryOptions {
  deleteEnabled: boolean;
  manifestPolicy?: ManifestPolicy;
  cache?: CacheOptions;
  /** Told of upload activity (metrics); absent when metrics are off. */
  uploadObserver?: UploadObserver;
  /** `storage.tag.concurrencylimit`: tag lookups in flight at once (0: one per CPU). */
  tagConcurrency?: number;
  /** Shared with the online garbage collector when `storage.gc` is enabled. */
  fence?: BlobFence;
}

export interface Page<T> {
  items: T[];
  /** The last item returned when more follow (for the `Link` header), else null. */
  next: string | null;
}

export class Registry {
  readonly blobs: BlobStore;
  readonly uploads: UploadStore;
  readonly tags: TagStore;
  readonly manifests: ManifestStore;
  private readonly cache: RegistryCache;

  constructor(
    readonly driver: StorageDriver,
    readonly options: RegistryOptions,
  ) {
    const cache = (this.cache = new RegistryCache(options.cache ?? DEFAULT_CACHE_OPTIONS));
    this.blobs = new BlobStore(driver, cache, options.fence ?? new BlobFence());
    this.uploads = new UploadStore(driver, this.blobs, options.uploadObserver);
    this.tags = new TagStore(driver, options.tagConcurrency);
    this.manifests = new ManifestStore(driver, this.blobs, this.tags, new ReferrersIndex(driver), cache, options.manifestPolicy);
  }

  /** Online GC deleted these blobs: forget every cached answer about them. */
  async forgetBlobs(digests: readonly string[]): Promise<void> {
    await this.cache.forgetBlobs(digests);
  }

  requireDeleteEnabled(): void {
    if (!this.options.deleteEnabled) fail('UNSUPPORTED', 'deletes are disabled: set storage.delete.enabled to true', undefined, 405);
  }

  async listTags(name: string, n: number | undefined, last: string | undefined): Promise<Page<string>> {
    const tags = await this.tags.list(name);
    if (tags === null) fail('NAME_UNKNOWN', 'repository name not known to registry', { name });
    return paginate(tags, n, last);
  }

  /**
   * Delete a whole repository: its tags, manifest revisions, layer links and uploads. Blobs stay
   * for garbage collection; repositories nested below this name are untouched.
   */
  async deleteRepository(name: string): Promise<void> {
    const repo = pathFor({ kind: 'repository', name });
    const own = ['_manifests', '_layers', '_uploads'].map((d) => `${repo}/${d}`);
    const present = await Promise.all(own.map((p) => this.driver.stat(p).then(() => true, () => false)));
    if (!present[0] && !present[1]) {
      await this.cache.forget(name); // whatever a cache still says about it is stale
      fail('NAME_UNKNOWN', 'repository name not known to registry', { name });
    }
    for (let i = 0; i < own.length; i++) {
      if (!present[i]) continue;
      await this.driver.delete(own[i]!).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
    }
    await this.cache.forget(name);
  }

  async catalog(n: number | undefined, last: string | undefined): Promise<Page<string>> {
    return paginate(await listRepositories(this.driver), n, last);
  }
}

/** Items strictly after `last`, at most `n` of them. */
export function paginate(sorted: string[], n: number | undefined, last: string | undefined): Page<string> {
  let start = 0;
  if (last !== undefined && last !== '') {
    start = sorted.findIndex((t) => t > last);
    if (start < 0) start = sorted.length;
  }
  const rest = sorted.slice(start);
  if (n === undefined || rest.length <= n) return { items: rest, next: null };
  const items = rest.slice(0, n);
  return { items, next: items.length > 0 ? items[items.length - 1]! : null };
}
