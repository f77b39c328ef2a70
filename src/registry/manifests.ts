/**
 * Manifests: stored as global blobs, linked into a repository by
 * `_manifests/revisions/<alg>/<hex>/link`, named by tags. Served as the exact bytes pushed.
 */
import { isNotFound, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { BlobStore, readLink } from './blobs.js';
import type { RegistryCache } from './cache.js';
import { digestOf } from './digest.js';
import { fail } from './errors.js';
import { MEDIA_TYPES, mediaTypeOf, parseManifest, type Descriptor, type ParsedManifest } from './manifest-format.js';
import { algorithmOf, checkDigest, isDigest, isTag } from './names.js';
import { ReferrersIndex } from './referrers.js';
import { TagStore } from './tags.js';

export interface StoredManifest {
  digest: string;
  mediaType: string;
  content: Buffer;
  /** The parsed JSON, for callers that inspect it (Accept fallbacks, referrers). */
  doc: Record<string, unknown>;
}

export interface PutResult {
  digest: string;
  subject?: string;
}

export interface ManifestPolicy {
  /** Regular expressions URLs of non-distributable layers must match; none → URLs are refused. */
  allowURLs: RegExp[];
  denyURLs: RegExp[];
  /**
   * `validation.manifests.indexes`: which child manifests of an index must already be in the
   * repository: all of them (the default, and 2.8's only behaviour), none, or those whose
   * platform is listed (an empty list means all, as Distribution 3).
   */
  indexChildren?: 'all' | 'none' | { platforms: { architecture: string; os: string }[] };
}

export class ManifestStore {
  constructor(
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    private readonly tags: TagStore,
    private readonly referrers: ReferrersIndex,
    private readonly cache: RegistryCache,
    private readonly policy: ManifestPolicy = { allowURLs: [], denyURLs: [] },
  ) {}

  /** The digest a tag or digest reference names in `name`, or null. */
  async resolve(name: string, reference: string): Promise<string | null> {
    if (isDigest(reference)) {
      checkDigest(reference);
      return (await this.exists(name, reference)) ? reference : null;
    }
    if (!isTag(reference)) fail('TAG_INVALID', 'invalid tag', { tag: reference });
    const digest = await this.tags.resolve(name, reference);
    return digest && (await this.exists(name, digest)) ? digest : null;
  }

  async exists(name: string, digest: string): Promise<boolean> {
    const key = `${name}@${digest}`;
    if (this.cache.revisions?.get(key)) return true;
    const linked = (await readLink(this.driver, pathFor({ kind: 'manifestRevisionLink', name, digest }))) === digest;
    if (linked) this.cache.revisions?.set(key, true);
    return linked;
  }

  async get(name: string, reference: string): Promise<StoredManifest> {
    const digest = await this.resolve(name, reference);
    if (!digest) fail('MANIFEST_UNKNOWN', 'manifest unknown', { name, reference });
    return this.read(digest);
  }

  async read(digest: string): Promise<StoredManifest> {
    let content = this.cache.manifests.get(digest);
    if (!content) {
      try {
        content = await this.blobs.getGlobal(digest);
      } catch (err) {
        if (isNotFound(err)) fail('MANIFEST_UNKNOWN', 'manifest unknown', { digest });
        throw err;
      }
      // Content is addressed by its digest: only bytes that hash right are kept and served.
      if (digestOf(content, algorithmOf(digest)) !== digest) fail('MANIFEST_UNKNOWN', 'stored manifest is corrupt', { digest });
      this.cache.manifests.set(digest, content);
    }
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(content.toString('utf8')) as Record<string, unknown>;
    } catch {
      doc = {};
    }
    return { digest, mediaType: mediaTypeOf(doc), content, doc };
  }

  async put(name: string, reference: string, content: Buffer, contentType: string | undefined): Promise<PutResult> {
    const byDigest = isDigest(reference);
    if (byDigest) checkDigest(reference);
    else if (!isTag(reference)) fail('TAG_INVALID', 'invalid tag', { tag: reference });
    const digest = digestOf(content, byDigest ? algorithmOf(reference) : undefined);
    if (byDigest && digest !== reference) {
      fail('DIGEST_INVALID', 'manifest digest did not match the reference', { expected: reference, actual: digest });
    }
    const parsed = parseManifest(content, contentType);
    await this.verifyReferences(name, parsed);
    // Order matters for crash safety: content, then the revision link, then the tag.
    await this.blobs.putGlobal(digest, content);
    await this.driver.putContent(pathFor({ kind: 'manifestRevisionLink', name, digest }), Buffer.from(digest));
    this.cache.revisions?.set(`${name}@${digest}`, true);
    if (parsed.subject) await this.referrers.add(name, parsed.subject.digest, digest);
    if (!byDigest) await this.tags.tag(name, reference, digest);
    return { digest, subject: parsed.subject?.digest };
  }

  /** Delete by digest (the revision and every tag pointing at it) or by tag (the tag only). */
  async delete(name: string, reference: string): Promise<void> {
    if (!isDigest(reference)) {
      if (!isTag(reference)) fail('TAG_INVALID', 'invalid tag', { tag: reference });
      await this.tags.untag(name, reference);
      return;
    }
    const digest = checkDigest(reference);
    if (!(await this.exists(name, digest))) fail('MANIFEST_UNKNOWN', 'manifest unknown', { digest });
    const stored = await this.read(digest).catch(() => null);
    await this.tags.untagAll(name, await this.tags.tagsOf(name, digest));
    this.cache.revisions?.delete(`${name}@${digest}`);
    try {
      await this.driver.delete(pathFor({ kind: 'manifestRevisionDir', name, digest }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const subject = stored?.doc.subject as Descriptor | undefined;
    if (subject && typeof subject.digest === 'string') await this.referrers.remove(name, subject.digest, digest);
  }

  /** Descriptors of the manifests whose subject is `subject`, as the referrers API lists them. */
  async referrersOf(name: string, subject: string): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for (const digest of await this.referrers.list(name, subject)) {
      if (!(await this.exists(name, digest))) continue;
      const m = await this.read(digest).catch(() => null);
      if (!m) continue;
      const config = m.doc.config as { mediaType?: string } | undefined;
      const artifactType = (m.doc.artifactType as string | undefined) ?? config?.mediaType;
      const d: Descriptor = { mediaType: m.mediaType, digest, size: m.content.length };
      if (artifactType) d.artifactType = artifactType;
      if (m.doc.annotations && typeof m.doc.annotations === 'object') d.annotations = m.doc.annotations as Record<string, string>;
      out.push(d);
    }
    return out;
  }

  private async verifyReferences(name: string, parsed: ParsedManifest): Promise<void> {
    const missing: string[] = [];
    await Promise.all([
      ...parsed.blobs.map(async (d) => {
        if (d.urls && d.urls.length > 0) return this.checkURLs(d);
        if (d.mediaType === MEDIA_TYPES.dockerForeignLayer) fail('MANIFEST_INVALID', 'foreign layer without urls', { digest: d.digest });
        if (!(await this.blobs.stat(name, d.digest))) missing.push(d.digest);
      }),
      ...parsed.manifests.filter((d) => this.childMustExist(d)).map(async (d) => {
        if (!(await this.exists(name, d.digest))) missing.push(d.digest);
      }),
    ]);
    if (missing.length > 0) {
      fail('MANIFEST_BLOB_UNKNOWN', `manifest references ${missing.length === 1 ? 'a blob' : 'blobs'} unknown to this repository`, {
        digests: missing.sort(),
      });
    }
  }

  private childMustExist(d: Descriptor): boolean {
    const rule = this.policy.indexChildren ?? 'all';
    if (rule === 'all') return true;
    if (rule === 'none') return false;
    if (rule.platforms.length === 0) return true;
    return rule.platforms.some((p) => p.architecture === d.platform?.architecture && p.os === d.platform?.os);
  }

  private checkURLs(d: Descriptor): void {
    for (const url of d.urls ?? []) {
      const allowed = this.policy.allowURLs.some((r) => r.test(url)) && !this.policy.denyURLs.some((r) => r.test(url));
      if (!allowed) fail('MANIFEST_INVALID', `layer URL not allowed by validation.manifests.urls: ${url}`, { digest: d.digest, url });
    }
  }
}
