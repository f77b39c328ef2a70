/** Tags: `_manifests/tags/<tag>/current/link` plus an index of every digest the tag held. */
import { availableParallelism } from 'node:os';
import { isNotFound, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { readLink } from './blobs.js';
import { mapLimit } from './concurrency.js';
import { fail } from './errors.js';

export class TagStore {
  /** Tag lookups in flight at once (`storage.tag.concurrencylimit`; 0: one per CPU, as Distribution). */
  readonly concurrency: number;

  constructor(
    private readonly driver: StorageDriver,
    concurrencyLimit = 0,
  ) {
    this.concurrency = concurrencyLimit > 0 ? concurrencyLimit : availableParallelism();
  }

  async resolve(name: string, tag: string): Promise<string | null> {
    return readLink(this.driver, pathFor({ kind: 'tagCurrentLink', name, tag }));
  }

  /** Point `tag` at `digest`. The index entry is written first so the current link never names an unindexed digest. */
  async tag(name: string, tag: string, digest: string): Promise<void> {
    await this.driver.putContent(pathFor({ kind: 'tagIndexEntryLink', name, tag, digest }), Buffer.from(digest));
    await this.driver.putContent(pathFor({ kind: 'tagCurrentLink', name, tag }), Buffer.from(digest));
  }

  async untag(name: string, tag: string): Promise<void> {
    try {
      await this.driver.delete(pathFor({ kind: 'tagDir', name, tag }));
    } catch (err) {
      if (isNotFound(err)) fail('MANIFEST_UNKNOWN', `unknown tag "${tag}"`, { tag });
      throw err;
    }
  }

  /** All tags, sorted; null when the repository has no tags directory. */
  async list(name: string): Promise<string[] | null> {
    let children: string[];
    try {
      children = await this.driver.list(pathFor({ kind: 'tagsDir', name }));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
    const tags = children.map((p) => p.slice(p.lastIndexOf('/') + 1));
    // A tag directory without a current link (a crash mid-delete, or an old layout) is not a tag.
    const present = await mapLimit(tags, this.concurrency, (t) => this.resolve(name, t).then((d) => (d ? t : null)));
    return present.filter((t): t is string => t !== null).sort();
  }

  /** Tags whose current link is `digest`. */
  async tagsOf(name: string, digest: string): Promise<string[]> {
    const tags = (await this.list(name)) ?? [];
    const current = await mapLimit(tags, this.concurrency, (t) => this.resolve(name, t));
    return tags.filter((_, i) => current[i] === digest);
  }

  /** Remove every tag in `tags` (a manifest delete), `concurrency` at a time; tags already gone are fine. */
  async untagAll(name: string, tags: readonly string[]): Promise<void> {
    await mapLimit(tags, this.concurrency, (t) => this.untag(name, t).catch(() => undefined));
  }
}
