/**
 * The pull-through cache (`proxy`): which repositories are cached and from which upstream, the
 * handlers that replace the ordinary ones there, and expiry. A cached repository is read-only to
 * clients: pushes and deletes answer 405 UNSUPPORTED with Distribution's message. Repositories no
 * upstream covers are ordinary local ones.
 */
import type { Logger } from 'pino';
import { readLink } from '../registry/blobs.js';
import { listRepositories } from '../registry/catalog.js';
import { RegistryError, fail } from '../registry/errors.js';
import type { Registry } from '../registry/registry.js';
import type { RequestContext } from '../server/context.js';
import { getManifest } from '../server/handlers/manifests.js';
import type { RouteName } from '../server/routes.js';
import { isNotFound } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { ProxiedBlobs } from './blobs.js';
import { HttpClient } from './http.js';
import { ProxiedManifests } from './manifests.js';
import { ExpiryScheduler } from './scheduler.js';
import { DEFAULT_TIMEOUTS, upstreamFor, type ProxySettings, type UpstreamSettings } from './settings.js';
import { Upstream } from './upstream.js';

export type { ProxySettings } from './settings.js';
export { proxySettingsFrom } from './settings.js';

type Handler = (ctx: RequestContext) => Promise<void>;

/** What the HTTP front asks: the handler for a route in a cached repository, or undefined for a local one. */
export interface ProxyRouter {
  handlerFor(route: RouteName, method: string, name: string): Handler | undefined;
}

const unsupported: Handler = async () => fail('UNSUPPORTED', undefined, undefined, 405);

export class PullThroughCache implements ProxyRouter {
  private readonly http = new HttpClient();
  private readonly upstreams = new Map<UpstreamSettings, Upstream>();
  private readonly blobs: ProxiedBlobs;
  private readonly manifests: ProxiedManifests;

  private constructor(
    private readonly settings: ProxySettings,
    private readonly registry: Registry,
    private readonly scheduler: ExpiryScheduler | undefined,
    private readonly log: Logger,
  ) {
    const timeouts = settings.timeouts ?? DEFAULT_TIMEOUTS;
    for (const u of settings.upstreams) this.upstreams.set(u, new Upstream(u, this.http, timeouts, log));
    this.blobs = new ProxiedBlobs(registry, scheduler, log);
    this.manifests = new ProxiedManifests(registry, scheduler, log);
  }

  /** Start expiry (when some upstream has a ttl) and greet each upstream, without waiting for them. */
  static async start(settings: ProxySettings, registry: Registry, log: Logger): Promise<PullThroughCache> {
    let cache: PullThroughCache | undefined;
    const scheduler = settings.upstreams.some((u) => u.ttl > 0)
      ? new ExpiryScheduler(registry.driver, { blob: (n, d) => cache!.expireBlob(n, d), manifest: (n, d) => cache!.expireManifest(n, d) }, log, settings.saveEveryMs)
      : undefined;
    cache = new PullThroughCache(settings, registry, scheduler, log);
    await scheduler?.start();
    for (const upstream of cache.upstreams.values()) void cache.greet(upstream);
    return cache;
  }

  /** One ping at start-up: logs whether the upstream answers and how it authenticates (its challenge is kept for the first request). */
  private async greet(upstream: Upstream): Promise<void> {
    const where = { key: upstream.settings.key, prefix: upstream.settings.prefix || undefined, remoteurl: upstream.origin };
    try {
      const res = await upstream.ping();
      res.body.resume();
      if (res.status === 200 || res.status === 401) this.log.info({ ...where, auth: res.status === 401 ? String(res.headers['www-authenticate']).split(' ')[0] : 'none' }, 'proxy: upstream answers');
      else this.log.warn({ ...where, status: res.status }, 'proxy: upstream answers GET /v2/ with an error (check its URL and credentials)');
    } catch (err) {
      this.log.warn({ ...where, err: (err as Error).message }, 'proxy: upstream cannot be reached now; cached content is served meanwhile');
    }
  }

  handlerFor(route: RouteName, method: string, name: string): Handler | undefined {
    const match = upstreamFor(this.settings.upstreams, name);
    if (!match) return undefined;
    const upstream = this.upstreams.get(match.upstream)!;
    const remote = match.remoteName;
    const read = method === 'GET' || method === 'HEAD';
    if (remote === '') {
      // The prefix itself names no repository at the upstream.
      if (!read) return unsupported;
      return async () => fail('NAME_UNKNOWN', `repository name not known to registry: "${name}" is the prefix of ${match.upstream.key}`, { name });
    }
    switch (route) {
      case 'manifest':
        if (!read) return unsupported;
        return async (ctx) => {
          await this.manifests.prepare(ctx, upstream, remote);
          await getManifest(ctx);
        };
      case 'blob':
        return read ? (ctx) => this.blobs.serve(ctx, upstream, remote) : unsupported;
      case 'tags':
        return (ctx) => this.manifests.listTags(ctx, upstream, remote);
      case 'uploadStart':
        return unsupported;
      case 'upload':
        return read ? async (ctx) => fail('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: ctx.reference }) : unsupported;
      default:
        return undefined; // referrers, repository deletion: as for any repository
    }
  }

  /** A blob's time is up: unlink it here, and remove its bytes unless a local repository holds them. */
  private async expireBlob(name: string, digest: string): Promise<void> {
    await this.registry.blobs.unlink(name, digest).catch((err) => {
      if (!(err instanceof RegistryError && err.code === 'BLOB_UNKNOWN')) throw err;
    });
    if (await this.heldLocally(digest)) return;
    await this.registry.driver.delete(pathFor({ kind: 'blobDir', digest })).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  }

  private async expireManifest(name: string, digest: string): Promise<void> {
    await this.registry.manifests.delete(name, digest).catch((err) => {
      if (!(err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN')) throw err;
    });
  }

  /** Whether a repository no upstream covers links `digest`: its bytes cannot be fetched again, so they stay. */
  private async heldLocally(digest: string): Promise<boolean> {
    if (this.settings.upstreams.some((u) => u.prefix === '')) return false; // every repository is cached, as in Distribution
    for (const repo of await listRepositories(this.registry.driver)) {
      if (upstreamFor(this.settings.upstreams, repo)) continue;
      if ((await readLink(this.registry.driver, pathFor({ kind: 'layerLink', name: repo, digest }))) === digest) return true;
    }
    return false;
  }

  /** Pending expiry entries (tests). */
  get scheduled(): number {
    return this.scheduler?.size ?? 0;
  }

  async close(): Promise<void> {
    await this.scheduler?.stop();
    this.http.close();
  }
}
