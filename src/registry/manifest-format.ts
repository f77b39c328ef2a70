/**
 * Manifest formats: media types, parsing and structural validation of OCI image
 * manifests and indexes and Docker schema 2 manifests and manifest lists. Content is
 * never re-serialized: the registry stores and serves the exact bytes pushed.
 */
import { fail } from './errors.js';
import { digestProblem } from './names.js';

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const IMAGE_TYPES = new Set<string>([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);
const INDEX_TYPES = new Set<string>([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList]);

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: { architecture?: string; os?: string; variant?: string };
}

export interface ParsedManifest {
  mediaType: string;
  kind: 'image' | 'index';
  /** Blobs this manifest needs in the repository (config and layers). */
  blobs: Descriptor[];
  /** Child manifests (indexes). */
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  configMediaType?: string;
  annotations?: Record<string, string>;
}

export function isManifestMediaType(mediaType: string): boolean {
  return IMAGE_TYPES.has(mediaType) || INDEX_TYPES.has(mediaType);
}

/** Strip parameters and case: "application/X; charset=utf-8" → "application/x". */
export function baseMediaType(value: string | undefined): string {
  return (value ?? '').split(';')[0]!.trim().toLowerCase();
}

function invalid(message: string, detail?: unknown): never {
  fail('MANIFEST_INVALID', message, detail);
}

function descriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(`${where}: expected a descriptor object`);
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '') invalid(`${where}.mediaType: expected a string`);
  if (typeof d.digest !== 'string' || digestProblem(d.digest)) {
    invalid(`${where}.digest: ${typeof d.digest === 'string' ? digestProblem(d.digest) : 'expected a digest string'}`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) invalid(`${where}.size: expected a non-negative integer`);
  if (d.urls !== undefined && (!Array.isArray(d.urls) || d.urls.some((u) => typeof u !== 'string'))) {
    invalid(`${where}.urls: expected an array of strings`);
  }
  return d as unknown as Descriptor;
}

/** The media type a stored manifest is served with: its own `mediaType`, else its shape. */
export function mediaTypeOf(doc: Record<string, unknown>): string {
  if (typeof doc.mediaType === 'string' && doc.mediaType !== '') return doc.mediaType;
  return Array.isArray(doc.manifests) ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest;
}

/** Parse and validate pushed bytes against the Content-Type they were pushed with. */
export function parseManifest(content: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(content.toString('utf8'));
  } catch (err) {
    invalid(`manifest is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) invalid('manifest must be a JSON object');
  const m = doc as Record<string, unknown>;
  const declared = baseMediaType(contentType);
  if (declared === MEDIA_TYPES.dockerSchema1 || declared === MEDIA_TYPES.dockerSchema1Signed || m.schemaVersion === 1) {
    invalid('Docker schema 1 manifests are not supported: push schema 2 or OCI');
  }
  if (m.schemaVersion !== 2) invalid('schemaVersion: expected 2');
  if (m.mediaType !== undefined && typeof m.mediaType !== 'string') invalid('mediaType: expected a string');
  const own = typeof m.mediaType === 'string' && m.mediaType !== '' ? m.mediaType : undefined;
  if (isManifestMediaType(declared) && own !== undefined && own !== declared) {
    invalid(`mediaType in manifest is "${own}" but it was pushed as "${declared}"`);
  }
  const mediaType = isManifestMediaType(declared) ? declared : mediaTypeOf(m);
  if (!isManifestMediaType(mediaType)) invalid(`unsupported manifest media type "${mediaType}"`);
  if ((mediaType === MEDIA_TYPES.dockerManifest || mediaType === MEDIA_TYPES.dockerManifestList) && own === undefined) {
    invalid('mediaType: required in Docker schema 2 manifests');
  }

  const subject = m.subject === undefined ? undefined : descriptor(m.subject, 'subject');
  if (m.artifactType !== undefined && typeof m.artifactType !== 'string') invalid('artifactType: expected a string');
  const annotations = m.annotations as Record<string, string> | undefined;

  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(m.manifests)) invalid('manifests: expected an array');
    const manifests = m.manifests.map((d, i) => descriptor(d, `manifests[${i}]`));
    return { mediaType, kind: 'index', blobs: [], manifests, subject, artifactType: m.artifactType as string | undefined, annotations };
  }
  if (Array.isArray(m.manifests)) invalid('an image manifest must not have "manifests"');
  const config = descriptor(m.config, 'config');
  if (m.layers !== undefined && !Array.isArray(m.layers)) invalid('layers: expected an array');
  if (mediaType === MEDIA_TYPES.dockerManifest && !Array.isArray(m.layers)) invalid('layers: expected an array');
  const layers = ((m.layers as unknown[] | undefined) ?? []).map((d, i) => descriptor(d, `layers[${i}]`));
  return {
    mediaType,
    kind: 'image',
    blobs: [config, ...layers],
    manifests: [],
    subject,
    artifactType: m.artifactType as string | undefined,
    configMediaType: config.mediaType,
    annotations,
  };
}
