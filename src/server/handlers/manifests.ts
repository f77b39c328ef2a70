/** end-3 (GET/HEAD manifest), end-7 (PUT), end-9 (DELETE by digest or tag). */
import { MAX_MANIFEST_BYTES, mediaTypeOf } from '../../registry/manifest-format.js';
import { isDigest } from '../../registry/names.js';
import { readBounded } from '../body.js';
import { urlFor, type RequestContext } from '../context.js';
import { acceptedTypes, negotiate } from '../negotiate.js';
import { notifyManifestDelete, notifyManifests, tagOf, type ManifestFacts } from '../notify.js';
import { sendEmpty } from '../respond.js';

export async function getManifest(ctx: RequestContext): Promise<void> {
  const { registry, res } = ctx;
  let manifest = await registry.manifests.get(ctx.name, ctx.reference);
  // Each manifest read is a pull event, as in Distribution: an index answered by its child is two.
  const pulled: Array<{ manifest: ManifestFacts; tag?: string }> = [{ manifest, tag: tagOf(ctx.reference) }];
  const choice = negotiate(manifest, !isDigest(ctx.reference), acceptedTypes(ctx.req));
  if (choice.kind === 'child') {
    manifest = await registry.manifests.get(ctx.name, choice.digest);
    pulled.push({ manifest });
  }
  const etag = `"${manifest.digest}"`;
  const headers = {
    'Content-Type': manifest.mediaType,
    'Docker-Content-Digest': manifest.digest,
    ETag: etag,
  };
  // As Distribution: each If-None-Match header is compared whole, quoted or not.
  if ((ctx.req.headersDistinct['if-none-match'] ?? []).some((v) => v === etag || v === manifest.digest)) {
    sendEmpty(res, 304, headers);
    return;
  }
  await notifyManifests(ctx, 'pull', pulled);
  res.writeHead(200, { ...headers, 'Content-Length': manifest.content.length });
  res.end(ctx.req.method === 'HEAD' ? undefined : manifest.content);
}

export async function putManifest(ctx: RequestContext): Promise<void> {
  const content = await readBounded(ctx.req, MAX_MANIFEST_BYTES, 'MANIFEST_INVALID', 'manifest');
  const result = await ctx.registry.manifests.put(ctx.name, ctx.reference, content, ctx.req.headers['content-type']);
  if (ctx.events) {
    const doc = JSON.parse(content.toString('utf8')) as Record<string, unknown>; // put() has parsed it once already
    await notifyManifests(ctx, 'push', [{ manifest: { digest: result.digest, mediaType: mediaTypeOf(doc), content, doc }, tag: tagOf(ctx.reference) }]);
  }
  const headers: Record<string, string> = {
    Location: urlFor(ctx, `/v2/${ctx.name}/manifests/${result.digest}`),
    'Docker-Content-Digest': result.digest,
  };
  if (result.subject) headers['OCI-Subject'] = result.subject;
  sendEmpty(ctx.res, 201, headers);
}

export async function deleteManifest(ctx: RequestContext): Promise<void> {
  ctx.registry.requireDeleteEnabled();
  // Deleting by digest removes the tags that point at it: each is an event of its own.
  const untagged = ctx.events && isDigest(ctx.reference) ? await ctx.registry.tags.tagsOf(ctx.name, ctx.reference) : [];
  await ctx.registry.manifests.delete(ctx.name, ctx.reference);
  await notifyManifestDelete(ctx, ctx.reference, untagged);
  sendEmpty(ctx.res, 202);
}
