/** end-8a/8b (tags list), the catalog, and end-12a/12b (referrers). */
import type { Page } from '../../registry/registry.js';
import { fail } from '../../registry/errors.js';
import { MEDIA_TYPES } from '../../registry/manifest-format.js';
import { checkDigest } from '../../registry/names.js';
import type { RequestContext } from '../context.js';
import { notifyRepositoryDelete } from '../notify.js';
import { sendEmpty, sendJSON } from '../respond.js';

/** `n` as a count, or undefined; anything but a non-negative integer is PAGINATION_NUMBER_INVALID. */
function pageSize(ctx: RequestContext): number | undefined {
  const n = ctx.query.get('n');
  if (n === null || n === '') return undefined;
  if (!/^\d+$/.test(n) || !Number.isSafeInteger(Number(n))) fail('PAGINATION_NUMBER_INVALID', 'n must be a non-negative integer', { n });
  return Number(n);
}

function linkHeader(ctx: RequestContext, path: string, page: Page<string>, n: number | undefined): Record<string, string> {
  if (page.next === null || n === undefined) return {};
  const prefix = ctx.options.prefix.replace(/\/$/, '');
  return { Link: `<${prefix}${path}?last=${encodeURIComponent(page.next)}&n=${n}>; rel="next"` };
}

export async function listTags(ctx: RequestContext): Promise<void> {
  const n = pageSize(ctx);
  const page = await ctx.registry.listTags(ctx.name, n, ctx.query.get('last') ?? undefined);
  sendJSON(ctx.res, 200, { name: ctx.name, tags: page.items }, linkHeader(ctx, `/v2/${ctx.name}/tags/list`, page, n));
}

const DEFAULT_CATALOG_ENTRIES = 100;

export async function catalog(ctx: RequestContext): Promise<void> {
  const requested = pageSize(ctx);
  const n = Math.min(requested ?? DEFAULT_CATALOG_ENTRIES, ctx.options.catalogMaxEntries);
  const page = await ctx.registry.catalog(n, ctx.query.get('last') ?? undefined);
  sendJSON(ctx.res, 200, { repositories: page.items }, linkHeader(ctx, '/v2/_catalog', page, n));
}

export async function listReferrers(ctx: RequestContext): Promise<void> {
  const subject = checkDigest(ctx.reference);
  const artifactType = ctx.query.get('artifactType');
  let manifests = await ctx.registry.manifests.referrersOf(ctx.name, subject);
  const headers: Record<string, string> = { 'Content-Type': MEDIA_TYPES.ociIndex };
  if (artifactType !== null && artifactType !== '') {
    manifests = manifests.filter((m) => m.artifactType === artifactType);
    headers['OCI-Filters-Applied'] = 'artifactType';
  }
  sendJSON(ctx.res, 200, { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests }, headers);
}

/** Wharf's extension: DELETE /v2/_wharf/repositories/<name> removes the repository, leaving blobs to GC. */
export async function deleteRepository(ctx: RequestContext): Promise<void> {
  ctx.registry.requireDeleteEnabled();
  await ctx.registry.deleteRepository(ctx.name);
  await notifyRepositoryDelete(ctx);
  sendEmpty(ctx.res, 202);
}
