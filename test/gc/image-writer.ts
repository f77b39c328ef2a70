/** Blobs and single-platform OCI images pushed through the registry layer, for the GC tests' layouts. */
import { createHash, randomBytes } from 'node:crypto';
import type { Registry } from '../../src/registry/registry.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface Descriptor {
  digest: string;
  size: number;
}

/** `blob` uploads bytes (random ones of `blobBytes` by default); `image` pushes a manifest with a fresh config. */
export function imageWriter(registry: Registry, blobBytes: number) {
  const blob = async (name: string, content: Buffer | string = randomBytes(blobBytes)): Promise<Descriptor> => {
    const data = Buffer.from(content);
    const upload = await registry.uploads.start(name);
    await registry.uploads.finish(name, upload.id, sha(data), [data]);
    return { digest: sha(data), size: data.length };
  };
  /** Layers default to one new blob; `extra` goes into the manifest (a subject, say). */
  const image = async (name: string, ref: string, layers?: Descriptor[], extra: Record<string, unknown> = {}) => {
    const config = await blob(name, `{"architecture":"amd64","os":"linux","id":"${randomBytes(6).toString('hex')}"}`);
    const ls = layers ?? [await blob(name)];
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: ls.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
        ...extra,
      }),
    );
    const { digest } = await registry.manifests.put(name, ref, body, OCI_MANIFEST);
    return { digest, size: body.length, config: config.digest, layers: ls.map((l) => l.digest) };
  };
  return { blob, image };
}
