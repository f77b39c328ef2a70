/**
 * In-process caches. Content addressed by digest never changes, so caching it is always
 * safe. Positive "repository has this link" answers go stale only when another instance
 * deletes; that is the contract of Distribution's `storage.cache.blobdescriptor: inmemory`,
 * and they are kept only when that cache is configured. Absence is never cached.
 */
export class LRU<V> {
  private readonly map = new Map<string, V>();
  private weight = 0;

  constructor(
    private readonly maxWeight: number,
    private readonly weigh: (v: V) => number = () => 1,
  ) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
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

  /** Remove every key starting with `prefix` (a repository's entries when it is deleted). */
  deletePrefix(prefix: string): void {
    for (const key of [...this.map.keys()]) if (key.startsWith(prefix)) this.delete(key);
  }
}

export interface CacheOptions {
  /** `storage.cache.blobdescriptor` is set: keep positive link answers. */
  descriptors: boolean;
  /** `storage.cache.blobdescriptorsize`: entries. */
  descriptorEntries: number;
  /** Bytes of manifest content kept by digest. */
  manifestBytes: number;
}

export const DEFAULT_CACHE_OPTIONS: CacheOptions = { descriptors: true, descriptorEntries: 10_000, manifestBytes: 32 * 1024 * 1024 };

export class RegistryCache {
  /** "<name>@<digest>" → true when the repository links the blob or manifest revision. */
  readonly links: LRU<true> | null;
  /** digest → size of the global blob. */
  readonly blobSizes: LRU<number> | null;
  /** digest → manifest bytes. */
  readonly manifests: LRU<Buffer>;

  constructor(options: CacheOptions) {
    this.links = options.descriptors ? new LRU<true>(options.descriptorEntries) : null;
    this.blobSizes = options.descriptors ? new LRU<number>(options.descriptorEntries) : null;
    this.manifests = new LRU<Buffer>(options.manifestBytes, (b) => b.length);
  }

  /** Drop every link answer about repository `name` (it was deleted). */
  forget(name: string): void {
    this.links?.deletePrefix(`layer:${name}@`);
    this.links?.deletePrefix(`revision:${name}@`);
  }
}
