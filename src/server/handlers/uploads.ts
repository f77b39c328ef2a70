/**
 * Uploads: end-4a (POST), end-4b (POST ?digest= monolithic), end-11 (POST ?mount=&from=),
 * end-5 (PATCH chunk), end-6 (PUT ?digest= close), end-13 (GET status), DELETE (cancel).
 * Bodies stream straight from the socket to the driver.
 */
import { fail } from '../../registry/errors.js';
import { checkDigest, checkName } from '../../registry/names.js';
import { parseContentRange } from '../body.js';
import { urlFor, type RequestContext } from '../context.js';
import { notifyBlob, notifyMount } from '../notify.js';
import { sendEmpty } from '../respond.js';

function uploadHeaders(ctx: RequestContext, id: string, size: number): Record<string, string> {
  return {
    Location: urlFor(ctx, `/v2/${ctx.name}/blobs/uploads/${id}`),
    Range: `0-${Math.max(size - 1, 0)}`,
    'Docker-Upload-UUID': id,
  };
}

function blobCreated(ctx: RequestContext, digest: string): void {
  sendEmpty(ctx.res, 201, { Location: urlFor(ctx, `/v2/${ctx.name}/blobs/${digest}`), 'Docker-Content-Digest': digest });
}

/** A body is present when it has a length or is chunked; an empty body is no chunk at all. */
function hasBody(ctx: RequestContext): boolean {
  const length = ctx.req.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return ctx.req.headers['transfer-encoding'] !== undefined;
}

function checkLength(ctx: RequestContext): void {
  const length = ctx.req.headers['content-length'];
  if (length !== undefined && !/^\d+$/.test(length)) fail('SIZE_INVALID', 'invalid Content-Length', { 'Content-Length': length });
}

export async function startUpload(ctx: RequestContext): Promise<void> {
  const { registry, query } = ctx;
  checkLength(ctx);
  const mount = query.get('mount');
  const from = query.get('from');
  // Without pull access on `from` (auth), the mount is not tried: the client gets a plain upload.
  if (mount !== null && from !== null && from !== '' && ctx.mountAllowed !== false) {
    const digest = checkDigest(mount);
    checkName(from);
    const mounted = await registry.blobs.mount(ctx.name, from, digest);
    if (mounted) {
      await notifyMount(ctx, mounted, from);
      blobCreated(ctx, digest);
      return;
    }
  }
  const digestParam = query.get('digest');
  if (digestParam !== null) {
    const digest = checkDigest(digestParam);
    const upload = await registry.uploads.start(ctx.name);
    const desc = await registry.uploads.finish(ctx.name, upload.id, digest, ctx.req);
    await notifyBlob(ctx, 'push', desc);
    blobCreated(ctx, desc.digest);
    return;
  }
  const upload = await registry.uploads.start(ctx.name);
  sendEmpty(ctx.res, 202, uploadHeaders(ctx, upload.id, 0));
}

export async function uploadStatus(ctx: RequestContext): Promise<void> {
  const status = await ctx.registry.uploads.status(ctx.name, ctx.reference);
  sendEmpty(ctx.res, 204, uploadHeaders(ctx, status.id, status.size));
}

/** Where a chunk's Content-Range says it starts (checked against Content-Length), or undefined without one. */
function chunkStart(ctx: RequestContext): number | undefined {
  const rangeHeader = ctx.req.headers['content-range'];
  if (rangeHeader === undefined) return undefined;
  const range = parseContentRange(rangeHeader);
  if (!range || range.end < range.start) {
    fail('RANGE_INVALID', `malformed Content-Range "${rangeHeader}": expected <start>-<end>`, undefined, 416);
  }
  const length = ctx.req.headers['content-length'];
  if (length !== undefined && Number(length) !== range.end - range.start + 1) {
    fail('SIZE_INVALID', `Content-Range ${rangeHeader} does not match Content-Length ${length}`);
  }
  return range.start;
}

export async function patchUpload(ctx: RequestContext): Promise<void> {
  checkLength(ctx);
  const start = chunkStart(ctx);
  const status = await ctx.registry.uploads.append(ctx.name, ctx.reference, ctx.req, start);
  sendEmpty(ctx.res, 202, uploadHeaders(ctx, status.id, status.size));
}

export async function putUpload(ctx: RequestContext): Promise<void> {
  checkLength(ctx);
  const digestParam = ctx.query.get('digest');
  if (digestParam === null || digestParam === '') fail('DIGEST_INVALID', 'digest missing: PUT needs ?digest=<digest>');
  const digest = checkDigest(digestParam);
  // A final chunk with a Content-Range is held to the same order as a PATCH (416 when out of order).
  const body = hasBody(ctx);
  const start = body ? chunkStart(ctx) : undefined;
  const desc = await ctx.registry.uploads.finish(ctx.name, ctx.reference, digest, body ? ctx.req : null, start);
  await notifyBlob(ctx, 'push', desc);
  blobCreated(ctx, desc.digest);
}

export async function cancelUpload(ctx: RequestContext): Promise<void> {
  await ctx.registry.uploads.cancel(ctx.name, ctx.reference);
  sendEmpty(ctx.res, 204);
}
