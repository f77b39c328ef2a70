/**
 * Manifest content negotiation, as Distribution 2.8 does it: by digest the stored bytes are
 * always served; by tag, an OCI manifest or index is served only to clients that accept it,
 * and a Docker manifest list is replaced by its linux/amd64 image for clients that do not.
 */
import type { IncomingMessage } from 'node:http';
import { fail } from '../registry/errors.js';
import { MEDIA_TYPES } from '../registry/manifest-format.js';
import type { StoredManifest } from '../registry/manifests.js';

export function acceptedTypes(req: IncomingMessage): Set<string> {
  const raw = req.headersDistinct?.accept ?? [];
  const types = new Set<string>();
  for (const header of raw) {
    for (const part of header.split(',')) {
      const t = part.split(';')[0]!.trim().toLowerCase();
      if (t) types.add(t);
    }
  }
  return types;
}

export type Negotiated = { kind: 'serve'; manifest: StoredManifest } | { kind: 'child'; digest: string };

export function negotiate(manifest: StoredManifest, byTag: boolean, accepted: Set<string>): Negotiated {
  if (!byTag) return { kind: 'serve', manifest };
  switch (manifest.mediaType) {
    case MEDIA_TYPES.ociManifest:
      if (!accepted.has(MEDIA_TYPES.ociManifest)) {
        fail('MANIFEST_UNKNOWN', 'OCI manifest found, but accept header does not support OCI manifests');
      }
      break;
    case MEDIA_TYPES.ociIndex:
      if (!accepted.has(MEDIA_TYPES.ociIndex)) fail('MANIFEST_UNKNOWN', 'OCI index found, but accept header does not support OCI indexes');
      break;
    case MEDIA_TYPES.dockerManifestList:
      if (!accepted.has(MEDIA_TYPES.dockerManifestList)) {
        const children = (manifest.doc.manifests as { digest?: string; platform?: { os?: string; architecture?: string } }[]) ?? [];
        const amd64 = children.find((c) => c.platform?.os === 'linux' && c.platform?.architecture === 'amd64');
        if (!amd64?.digest) fail('MANIFEST_UNKNOWN', 'manifest list has no linux/amd64 image for a client that does not accept manifest lists');
        return { kind: 'child', digest: amd64.digest };
      }
      break;
  }
  return { kind: 'serve', manifest };
}
