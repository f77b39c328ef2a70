/**
 * The events a request causes, as Distribution emits them, handed to the notifier before the
 * response goes out (the handler awaits the durable write). One call per request, so its
 * events share one request record. Nothing happens when notifications are not configured.
 *
 * What emits what (Distribution 2.8 and 3 alike):
 *   blob GET or HEAD (200, 206, 304, 307, 416)  pull    {mediaType octet-stream, digest, size, url}
 *   upload completed (PUT, or POST ?digest=)    push    the same
 *   cross-repository mount                      mount   the same + fromRepository
 *   blob DELETE                                 delete  {digest, repository}
 *   manifest GET or HEAD (not 304)              pull    {mediaType, digest, size, url, tag when by tag, references}
 *   manifest PUT                                push    the same
 *   manifest DELETE by digest                   delete  {digest, repository}, then one {tag, repository} per tag it had
 *   manifest DELETE by tag                      delete  {tag, repository}
 *   repository DELETE (Wharf's extension)       delete  {repository}
 */
import type { BlobDescriptor } from '../registry/blobs.js';
import { isDigest } from '../registry/names.js';
import {
  BLOB_MEDIA_TYPE,
  actorRecord,
  manifestReferences,
  newEvent,
  requestRecord,
  type Event,
  type EventAction,
  type EventOrigin,
} from '../notifications/index.js';
import { urlFor, type RequestContext } from './context.js';

/** A manifest as events describe it. */
export interface ManifestFacts {
  digest: string;
  mediaType: string;
  content: Buffer;
  doc: Record<string, unknown>;
}

export async function notifyBlob(ctx: RequestContext, action: 'push' | 'pull', blob: BlobDescriptor): Promise<void> {
  if (!ctx.events) return;
  await ctx.events.enqueue([blobEvent(ctx, origin(ctx), action, blob)]);
}

export async function notifyMount(ctx: RequestContext, blob: BlobDescriptor, fromRepository: string): Promise<void> {
  if (!ctx.events) return;
  const event = blobEvent(ctx, origin(ctx), 'mount', blob);
  event.target.fromRepository = fromRepository;
  await ctx.events.enqueue([event]);
}

export async function notifyBlobDelete(ctx: RequestContext, digest: string): Promise<void> {
  if (!ctx.events) return;
  await ctx.events.enqueue([newEvent('delete', origin(ctx), { digest, repository: ctx.name })]);
}

/** Pull or push of manifests (a pull by tag that was answered with an index's child names both). */
export async function notifyManifests(ctx: RequestContext, action: 'push' | 'pull', manifests: Array<{ manifest: ManifestFacts; tag?: string }>): Promise<void> {
  if (!ctx.events) return;
  const from = origin(ctx);
  const includeReferences = ctx.events.includeReferences;
  const events = manifests.map(({ manifest, tag }) =>
    newEvent(action, from, {
      mediaType: manifest.mediaType,
      digest: manifest.digest,
      size: manifest.content.length,
      length: manifest.content.length,
      repository: ctx.name,
      url: urlFor(ctx, `/v2/${ctx.name}/manifests/${manifest.digest}`),
      tag,
      references: includeReferences ? manifestReferences(manifest.doc) : undefined,
    }),
  );
  await ctx.events.enqueue(events);
}

/** DELETE of a manifest: by digest (the revision, then each tag it had) or by tag. */
export async function notifyManifestDelete(ctx: RequestContext, reference: string, untagged: string[]): Promise<void> {
  if (!ctx.events) return;
  const from = origin(ctx);
  const events: Event[] = isDigest(reference) ? [newEvent('delete', from, { digest: reference, repository: ctx.name })] : [];
  for (const tag of isDigest(reference) ? untagged : [reference]) events.push(newEvent('delete', from, { repository: ctx.name, tag }));
  await ctx.events.enqueue(events);
}

export async function notifyRepositoryDelete(ctx: RequestContext): Promise<void> {
  if (!ctx.events) return;
  await ctx.events.enqueue([newEvent('delete', origin(ctx), { repository: ctx.name })]);
}

/** The tag a manifest reference names, or undefined for a digest. */
export function tagOf(reference: string): string | undefined {
  return isDigest(reference) ? undefined : reference;
}

function blobEvent(ctx: RequestContext, from: EventOrigin, action: EventAction, blob: BlobDescriptor): Event {
  return newEvent(action, from, {
    mediaType: BLOB_MEDIA_TYPE,
    digest: blob.digest,
    size: blob.size,
    length: blob.size,
    repository: ctx.name,
    url: urlFor(ctx, `/v2/${ctx.name}/blobs/${blob.digest}`),
  });
}

function origin(ctx: RequestContext): EventOrigin {
  return { request: requestRecord(ctx.req), actor: actorRecord(ctx.req, ctx.user), source: ctx.events!.source };
}
