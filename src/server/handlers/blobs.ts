/** end-2 (GET/HEAD blob, with Range) and end-10 (DELETE blob). */
import { RegistryError } from '../../registry/errors.js';
import { checkDigest } from '../../registry/names.js';
import { parseRange } from '../body.js';
import { clientIP } from '../client-ip.js';
import type { RequestContext } from '../context.js';
import { notifyBlob, notifyBlobDelete } from '../notify.js';
import { sendEmpty, sendError } from '../respond.js';

export async function getBlob(ctx: RequestContext): Promise<void> {
  const { res, registry } = ctx;
  const digest = checkDigest(ctx.reference);
  const desc = await registry.blobs.statOrFail(ctx.name, digest);
  const redirect = ctx.req.method === 'GET' ? await registry.blobs.redirectURL('GET', digest, { ip: clientIP(ctx.req) }) : null;
  // Every answer from here on is a pull event in Distribution (307, 304 and 416 included).
  await notifyBlob(ctx, 'pull', desc);
  if (redirect) {
    sendEmpty(res, 307, { Location: redirect, 'Docker-Content-Digest': digest });
    return;
  }
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest,
    ETag: `"${digest}"`,
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'max-age=31536000',
  };
  // As Go's http.ServeContent, which Distribution serves blobs with: a list, weak or strong, or "*".
  const candidates = (ctx.req.headers['if-none-match'] ?? '').split(',').map((v) => v.trim().replace(/^W\//, ''));
  if (candidates.some((v) => v === `"${digest}"` || v === '*')) {
    sendEmpty(res, 304, headers);
    return;
  }
  const range = parseRange(ctx.req.headers.range, desc.size);
  if (range === 'unsatisfiable') {
    const err = new RegistryError('RANGE_INVALID', `requested range not satisfiable for a ${desc.size}-byte blob`, undefined, 416);
    sendError(ctx.req, res, err, { 'Content-Range': `bytes */${desc.size}` });
    return;
  }
  let status = 200;
  let start = 0;
  let length = desc.size;
  if (range) {
    status = 206;
    start = range.start;
    length = range.end - range.start + 1;
    headers['Content-Range'] = `bytes ${range.start}-${range.end}/${desc.size}`;
  }
  headers['Content-Length'] = length;
  if (ctx.req.method === 'HEAD') {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  res.writeHead(status, headers);
  await registry.blobs.send(digest, start, length, res);
}

export async function deleteBlob(ctx: RequestContext): Promise<void> {
  ctx.registry.requireDeleteEnabled();
  const digest = checkDigest(ctx.reference);
  await ctx.registry.blobs.unlink(ctx.name, digest);
  await notifyBlobDelete(ctx, digest);
  sendEmpty(ctx.res, 202, { 'Docker-Content-Digest': digest });
}
