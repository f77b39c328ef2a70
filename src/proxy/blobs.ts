/**
 * Blob GET/HEAD in a cached repository. A blob this repository holds is served from storage as in
 * any repository. Otherwise: bytes another repository already brought are linked here once the
 * upstream confirms this repository has them; anything else is downloaded (one download per
 * repository and digest however many clients ask, see BlobFetch). A HEAD asks the upstream only.
 */
import type { Logger } from 'pino';
import { readLink } from '../registry/blobs.js';
import { checkDigest } from '../registry/names.js';
import type { Registry } from '../registry/registry.js';
import type { RequestContext } from '../server/context.js';
import { getBlob } from '../server/handlers/blobs.js';
import { notifyBlob } from '../server/notify.js';
import { isNotFound } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { BlobFetch } from './blob-fetch.js';
import type { UpstreamResponse } from './http.js';
import { ENTRY_BLOB, type ExpiryScheduler } from './scheduler.js';
import type { Upstream, Wanted } from './upstream.js';

export class ProxiedBlobs {
  private readonly downloads = new Map<string, BlobFetch>();

  constructor(
    private readonly registry: Registry,
    private readonly scheduler: ExpiryScheduler | undefined,
    private readonly log: Logger,
  ) {}

  async serve(ctx: RequestContext, upstream: Upstream, remoteName: string): Promise<void> {
    const digest = checkDigest(ctx.reference);
    const { name } = ctx;
    // Storage decides, not a descriptor cache: expiry may have removed the bytes of a blob still linked elsewhere.
    const [linked, stored] = await Promise.all([this.linked(name, digest), this.storedSize(digest)]);
    if (linked && stored !== null) return getBlob(ctx);
    const wanted: Wanted = { code: 'BLOB_UNKNOWN', name, remoteName, reference: digest };
    const key = `${name}@${digest}`;
    let download = this.downloads.get(key);
    if (!download && (ctx.req.method === 'HEAD' || stored !== null)) {
      const res = await this.head(upstream, remoteName, digest);
      if (res.status !== 200) throw upstream.refusal(res, wanted);
      res.body.resume();
      if (stored === null) return answerHead(ctx, digest, res);
      // The bytes are here already (another repository pulled them): this repository's upstream has them too.
      await this.registry.blobs.link(name, digest, stored);
      this.scheduler?.add(name, digest, ENTRY_BLOB, upstream.settings.ttl);
      return getBlob(ctx);
    }
    if (!download) {
      download = new BlobFetch({ registry: this.registry, scheduler: this.scheduler, log: this.log }, upstream, name, remoteName, digest);
      this.downloads.set(key, download);
      const started = download;
      void started.done.catch(() => undefined).finally(() => {
        if (this.downloads.get(key) === started) this.downloads.delete(key);
      });
    }
    // A GET joins the stream while it has not begun; a range then gets the whole blob with 200, as from
    // Distribution's proxy (a server may ignore Range), rather than nothing until the download is done.
    // A HEAD, or a client too late for the stream, waits for the blob and is answered from storage.
    const joined = ctx.req.method === 'GET' ? download.join(ctx.res) : null;
    if (!joined) {
      await download.wait();
      return getBlob(ctx);
    }
    const desc = await joined;
    if (desc) await notifyBlob(ctx, 'pull', desc);
  }

  private async head(upstream: Upstream, remoteName: string, digest: string): Promise<UpstreamResponse> {
    try {
      return await upstream.request('HEAD', remoteName, `blobs/${digest}`);
    } catch (err) {
      throw upstream.failure(err);
    }
  }

  private async linked(name: string, digest: string): Promise<boolean> {
    return (await readLink(this.registry.driver, pathFor({ kind: 'layerLink', name, digest }))) === digest;
  }

  private async storedSize(digest: string): Promise<number | null> {
    try {
      const info = await this.registry.driver.stat(pathFor({ kind: 'blobData', digest }));
      return info.isDir ? null : info.size;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }
}

/** A HEAD answered from the upstream's answer, without storing anything (as Distribution). */
function answerHead(ctx: RequestContext, digest: string, res: UpstreamResponse): void {
  const length = res.headers['content-length'];
  ctx.res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest,
    ETag: `"${digest}"`,
    'Accept-Ranges': 'bytes',
    ...(length !== undefined && /^\d+$/.test(length) && { 'Content-Length': length }),
  });
  ctx.res.end();
}
