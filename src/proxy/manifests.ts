/**
 * Manifests and tags in a cached repository. Before a manifest GET/HEAD is answered from storage
 * (by the ordinary handler), what it will read is brought in: a digest missing here is fetched,
 * verified and stored; a tag is looked up at the upstream (a HEAD for its current digest) and moved
 * here when it changed. When the upstream cannot answer the tag, the cached one is served, as in
 * Distribution. Tag lists are the upstream's, or the cached ones when it cannot answer.
 */
import type { Logger } from 'pino';
import { digestOf } from '../registry/digest.js';
import { RegistryError } from '../registry/errors.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../registry/manifest-format.js';
import { algorithmOf, checkDigest, digestProblem, isDigest, isTag } from '../registry/names.js';
import { paginate, type Registry } from '../registry/registry.js';
import type { RequestContext } from '../server/context.js';
import { listTags } from '../server/handlers/listings.js';
import { acceptedTypes, negotiate } from '../server/negotiate.js';
import { pathFor } from '../storage/paths.js';
import { readSmall, type UpstreamResponse } from './http.js';
import { ENTRY_MANIFEST, type ExpiryScheduler } from './scheduler.js';
import { MANIFEST_ACCEPT, type Upstream, type Wanted } from './upstream.js';

const MAX_TAG_PAGES = 100;

export class ProxiedManifests {
  private readonly fetching = new Map<string, Promise<void>>();

  constructor(
    private readonly registry: Registry,
    private readonly scheduler: ExpiryScheduler | undefined,
    private readonly log: Logger,
  ) {}

  /** Bring into storage what a GET/HEAD of ctx.reference reads. Errors other than the upstream's are the handler's to report. */
  async prepare(ctx: RequestContext, upstream: Upstream, remoteName: string): Promise<void> {
    const { name, reference } = ctx;
    if (isDigest(reference)) {
      if (digestProblem(reference) === null && !(await this.registry.manifests.exists(name, reference))) {
        await this.fetch(upstream, name, remoteName, reference);
      }
      return;
    }
    if (!isTag(reference)) return; // the handler answers TAG_INVALID
    let digest: string;
    try {
      digest = await this.currentDigest(upstream, name, remoteName, reference);
    } catch (err) {
      this.log.debug({ name, tag: reference, err: (err as Error).message }, 'proxy: the upstream cannot resolve the tag; serving the cached one');
      return;
    }
    if (!(await this.registry.manifests.exists(name, digest))) await this.fetch(upstream, name, remoteName, digest);
    if ((await this.registry.tags.resolve(name, reference)) !== digest) await this.registry.tags.tag(name, reference, digest);
    await this.prepareChild(ctx, upstream, remoteName);
  }

  /** A manifest list served by tag to a client that does not accept lists is answered with its linux/amd64 child: bring that too. */
  private async prepareChild(ctx: RequestContext, upstream: Upstream, remoteName: string): Promise<void> {
    try {
      const choice = negotiate(await this.registry.manifests.get(ctx.name, ctx.reference), true, acceptedTypes(ctx.req));
      if (choice.kind === 'child' && !(await this.registry.manifests.exists(ctx.name, choice.digest))) {
        await this.fetch(upstream, ctx.name, remoteName, choice.digest);
      }
    } catch {
      /* the handler reaches the same answer and reports it */
    }
  }

  /** The digest the upstream's tag points at now (HEAD; a GET when the upstream does not say). */
  private async currentDigest(upstream: Upstream, name: string, remoteName: string, tag: string): Promise<string> {
    const head = await upstream.request('HEAD', remoteName, `manifests/${tag}`, { Accept: MANIFEST_ACCEPT });
    head.body.resume();
    if (head.status !== 200) throw new Error(`HEAD answered ${head.status}`);
    const said = head.headers['docker-content-digest'];
    if (typeof said === 'string' && digestProblem(said) === null) return said;
    const res = await upstream.request('GET', remoteName, `manifests/${tag}`, { Accept: MANIFEST_ACCEPT });
    if (res.status !== 200) throw upstream.refusal(res, { code: 'MANIFEST_UNKNOWN', name, remoteName, reference: tag });
    const content = await this.body(upstream, res);
    const digest = digestOf(content);
    await this.store(upstream, name, digest, content, res.headers['content-type']);
    return digest;
  }

  /** Fetch manifest `digest` once however many clients ask at the same time. */
  private fetch(upstream: Upstream, name: string, remoteName: string, digest: string): Promise<void> {
    const key = `${name}@${digest}`;
    let running = this.fetching.get(key);
    if (!running) {
      running = this.fetchNow(upstream, name, remoteName, checkDigest(digest)).finally(() => this.fetching.delete(key));
      this.fetching.set(key, running);
    }
    return running;
  }

  private async fetchNow(upstream: Upstream, name: string, remoteName: string, digest: string): Promise<void> {
    const wanted: Wanted = { code: 'MANIFEST_UNKNOWN', name, remoteName, reference: digest };
    let res: UpstreamResponse;
    try {
      res = await upstream.request('GET', remoteName, `manifests/${digest}`, { Accept: MANIFEST_ACCEPT });
    } catch (err) {
      throw upstream.failure(err);
    }
    if (res.status !== 200) throw upstream.refusal(res, wanted);
    const content = await this.body(upstream, res);
    const actual = digestOf(content, algorithmOf(digest));
    if (actual !== digest) {
      throw new RegistryError('UNKNOWN', `the upstream registry ${upstream.origin} sent a manifest whose digest is ${actual}, not ${digest}: discarded`, undefined, 502);
    }
    await this.store(upstream, name, digest, content, res.headers['content-type']);
  }

  private async body(upstream: Upstream, res: UpstreamResponse): Promise<Buffer> {
    try {
      return await readSmall(res.body, MAX_MANIFEST_BYTES);
    } catch (err) {
      throw upstream.failure(err);
    }
  }

  /** Store verified bytes as Distribution's cache does: no check that the blobs it names are here (they come on demand). */
  private async store(upstream: Upstream, name: string, digest: string, content: Buffer, contentType: string | undefined): Promise<void> {
    try {
      parseManifest(content, contentType);
    } catch (err) {
      throw new RegistryError('UNKNOWN', `the upstream registry ${upstream.origin} sent an invalid manifest ${digest}: ${(err as Error).message}`, undefined, 502);
    }
    await this.registry.blobs.putGlobal(digest, content);
    await this.registry.driver.putContent(pathFor({ kind: 'manifestRevisionLink', name, digest }), Buffer.from(digest));
    this.scheduler?.add(name, digest, ENTRY_MANIFEST, upstream.settings.ttl);
  }

  /** GET tags/list: the upstream's tags (all pages), paginated here as any list; the cached tags when it cannot answer. */
  async listTags(ctx: RequestContext, upstream: Upstream, remoteName: string): Promise<void> {
    let tags: string[];
    try {
      tags = await this.remoteTags(upstream, remoteName);
    } catch (err) {
      this.log.debug({ name: ctx.name, err: (err as Error).message }, 'proxy: the upstream cannot list tags; listing the cached ones');
      return listTags(ctx);
    }
    const sorted = [...new Set(tags)].sort();
    const registry = Object.assign(Object.create(ctx.registry) as Registry, {
      listTags: async (_name: string, n: number | undefined, last: string | undefined) => paginate(sorted, n, last),
    });
    return listTags({ ...ctx, registry });
  }

  private async remoteTags(upstream: Upstream, remoteName: string): Promise<string[]> {
    const out: string[] = [];
    let path = 'tags/list';
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const res = await upstream.request('GET', remoteName, path, { Accept: 'application/json' });
      if (res.status !== 200) {
        res.body.resume();
        throw new Error(`tags/list answered ${res.status}`);
      }
      const doc = JSON.parse((await readSmall(res.body, 16 * 1024 * 1024)).toString('utf8')) as { tags?: unknown };
      if (Array.isArray(doc.tags)) out.push(...doc.tags.filter((t): t is string => typeof t === 'string' && isTag(t)));
      const next = /<([^>]*)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''))?.[1];
      const query = next ? new URL(next, 'http://upstream').search : '';
      if (!query) break;
      path = `tags/list${query}`;
    }
    return out;
  }
}
