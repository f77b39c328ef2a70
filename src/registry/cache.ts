/**
 * Caches. Content addressed by digest never changes, so caching it is always safe. Positive
 * "repository has this link" answers go stale only when another instance deletes; that is the
 * contract of Distribution's `storage.cache.blobdescriptor: inmemory`, and they are kept only
 * when a cache is configured. With `redis` every instance shares them, and every delete clears
 * them. Absence is never cached.
 */
export class LRU<V> {
  private readonly map = new Map<string, V>();
  private weight = 0;

  constructor(
    private readonly maxWeight: number,
    private readonly weigh: (v: V) => number = () => 1,
    /** Told of every lookup, hit or miss (metrics); absent when metrics are off. */
    private readonly onLookup?: (hit: boolean) => void,
  ) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
    this.onLookup?.(v !== undefined);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    const w = this.weigh(value);
    if (w > this.maxWeight) return;
    this.delete(key);
    this.map.set(key, value);
    this.weight += w;
    while (this.weight > this.maxWeight) {
      const oldest = this.map.keys().next().value as string;
      this.delete(oldest);
    }
  }

  delete(key: string): void {
    const v = this.map.get(key);
    if (v === undefined) return;
    this.map.delete(key);
    this.weight -= this.weigh(v);
  }

  /** Remove every key `matches` accepts. */
  deleteWhere(matches: (key: string) => boolean): void {
    for (const key of [...this.map.keys()]) if (matches(key)) this.delete(key);
  }

  /** Remove every key starting with `prefix` (a repository's entries when it is deleted). */
  deletePrefix(prefix: string): void {
    for (const key of [...this.map.keys()]) if (key.startsWith(prefix)) this.delete(key);
  }
}

/** A blob as one repository or the global store sees it (the size is what a HEAD answers). */
export interface CachedDescriptor {
  digest: string;
  size: number;
}

/**
 * The blob-descriptor cache (`storage.cache.blobdescriptor`): global blob sizes and which
 * repositories link which blobs. In-process (`inmemory`) or shared by a fleet (`redis`). Reads
 * answer undefined for "not cached" (never "absent"); a cache that cannot be reached answers
 * undefined and never fails the request. Every method that forgets must have taken effect
 * (or be queued to) before the storage change it follows is reported to the client.
 */
export interface DescriptorCache {
  blob(digest: string): Promise<CachedDescriptor | undefined>;
  setBlob(desc: CachedDescriptor): Promise<void>;
  /** The descriptor of `digest` when the cache knows repository `name` links it. */
  linked(name: string, digest: string): Promise<CachedDescriptor | undefined>;
  setLinked(name: string, desc: CachedDescriptor): Promise<void>;
  forgetLinked(name: string, digest: string): Promise<void>;
  /**
   * Storage says `name` does not link `digest` though the cache may list it (another registry
   * deleted the link and left the entry, as Distribution 2.8 does): drop it, best effort.
   */
  dropStale(name: string, digest: string): void;
  /** Repository `name` was deleted: forget every blob it linked. */
  forgetRepository(name: string): Promise<void>;
  /** Online GC deleted these blobs: forget their sizes and every repository's link to them. */
  forgetBlobs?(digests: readonly string[]): Promise<void>;
}

/** What garbage collection leaves in storage, for a shared descriptor cache to agree with. */
export interface StorageAfterSweep {
  blobExists(digest: string): boolean;
  /** Whether repository `name` has its layer link to `digest`. */
  isLinked(name: string, digest: string): Promise<boolean>;
}

/** `storage.cache.blobdescriptor: inmemory`: per-process LRUs of `blobdescriptorsize` entries each. */
export class MemoryDescriptorCache implements DescriptorCache {
  private readonly links: LRU<true>;
  private readonly sizes: LRU<number>;

  constructor(entries: number) {
    this.links = new LRU<true>(entries);
    this.sizes = new LRU<number>(entries);
  }

  async blob(digest: string): Promise<CachedDescriptor | undefined> {
    const size = this.sizes.get(digest);
    return size === undefined ? undefined : { digest, size };
  }

  async setBlob(desc: CachedDescriptor): Promise<void> {
    this.sizes.set(desc.digest, desc.size);
  }

  async linked(name: string, digest: string): Promise<CachedDescriptor | undefined> {
    return this.links.get(`${name}@${digest}`) ? this.blob(digest) : undefined;
  }

  async setLinked(name: string, desc: CachedDescriptor): Promise<void> {
    this.links.set(`${name}@${desc.digest}`, true);
    this.sizes.set(desc.digest, desc.size);
  }

  async forgetLinked(name: string, digest: string): Promise<void> {
    this.links.delete(`${name}@${digest}`);
  }

  dropStale(name: string, digest: string): void {
    this.links.delete(`${name}@${digest}`);
  }

  async forgetRepository(name: string): Promise<void> {
    this.links.deletePrefix(`${name}@`);
  }

  async forgetBlobs(digests: readonly string[]): Promise<void> {
    const gone = new Set(digests);
    for (const d of gone) this.sizes.delete(d);
    this.links.deleteWhere((key) => gone.has(key.slice(key.lastIndexOf('@') + 1)));
  }
}

export interface CacheOptions {
  /** `storage.cache.blobdescriptor` is set: keep descriptors and positive link answers. */
  descriptors: boolean;
  /** `storage.cache.blobdescriptorsize`: entries (inmemory only, as in Distribution). */
  descriptorEntries: number;
  /** A cache shared by every instance (`redis`) instead of the in-process one. */
  shared?: DescriptorCache;
  /** Bytes of manifest content kept by digest. */
  manifestBytes: number;
  /** Told of every lookup, by cache (metrics); absent when metrics are off. */
  observe?: (cache: CacheName, hit: boolean) => void;
}

export type CacheName = 'blobdescriptor' | 'revisions' | 'manifests';

export const DEFAULT_CACHE_OPTIONS: CacheOptions = { descriptors: true, descriptorEntries: 10_000, manifestBytes: 32 * 1024 * 1024 };

export class RegistryCache {
  readonly descriptors: DescriptorCache | null;
  /**
   * "<name>@<digest>" → true when the repository links the manifest revision. In-process only:
   * with a shared cache another instance's manifest delete must be seen at once, and Distribution
   * keeps no revision links in Redis either.
   */
  readonly revisions: LRU<true> | null;
  /** digest → manifest bytes. */
  readonly manifests: LRU<Buffer>;

  constructor(options: CacheOptions) {
    const inProcess = options.descriptors && !options.shared;
    const observe = options.observe;
    const told = (cache: CacheName) => (observe ? (hit: boolean) => observe(cache, hit) : undefined);
    const descriptors = options.shared ?? (inProcess ? new MemoryDescriptorCache(options.descriptorEntries) : null);
    this.descriptors = descriptors && observe ? countingReads(descriptors, told('blobdescriptor')!) : descriptors;
    this.revisions = inProcess ? new LRU<true>(options.descriptorEntries, undefined, told('revisions')) : null;
    this.manifests = new LRU<Buffer>(options.manifestBytes, (b) => b.length, told('manifests'));
  }

  /** Online GC deleted these blobs: no cache may still answer for them. */
  async forgetBlobs(digests: readonly string[]): Promise<void> {
    for (const d of digests) this.manifests.delete(d);
    await this.descriptors?.forgetBlobs?.(digests);
  }

  /** Drop every answer about repository `name` (it was deleted). */
  async forget(name: string): Promise<void> {
    this.revisions?.deletePrefix(`${name}@`);
    await this.descriptors?.forgetRepository(name);
  }
}

/** `cache` with each read (`blob`, `linked`) told as a hit or a miss; every other member passes through. */
function countingReads(cache: DescriptorCache, told: (hit: boolean) => void): DescriptorCache {
  const counted = (read: (...a: never[]) => Promise<unknown>) => async (...args: never[]) => {
    const v = await read.apply(cache, args);
    told(v !== undefined);
    return v;
  };
  return new Proxy(cache, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      return prop === 'blob' || prop === 'linked' ? counted(v as (...a: never[]) => Promise<unknown>) : (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
}
