// Parsing and structural validation of manifests (src/registry/manifest-format.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError } from '../../src/registry/errors.js';
import { baseMediaType, isManifestMediaType, MAX_MANIFEST_BYTES, MEDIA_TYPES, mediaTypeOf, parseManifest } from '../../src/registry/manifest-format.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;
const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D1, size: 10 };
const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D2, size: 20 };

function parse(doc: unknown, contentType?: string) {
  return parseManifest(Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc)), contentType);
}

function invalid(doc: unknown, contentType?: string, message?: RegExp): void {
  assert.throws(
    () => parse(doc, contentType),
    (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.code, 'MANIFEST_INVALID');
      assert.equal(err.status, 400);
      if (message) assert.match(err.message, message);
      return true;
    },
  );
}

describe('parseManifest: images', () => {
  it('an OCI image manifest: blobs are config then layers', () => {
    const p = parse({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config, layers: [layer] }, MEDIA_TYPES.ociManifest);
    assert.equal(p.kind, 'image');
    assert.equal(p.mediaType, MEDIA_TYPES.ociManifest);
    assert.deepEqual(p.blobs.map((b) => b.digest), [D1, D2]);
    assert.deepEqual(p.manifests, []);
    assert.equal(p.configMediaType, config.mediaType);
    assert.equal(p.subject, undefined);
  });

  it('Content-Type parameters and case are ignored', () => {
    const p = parse({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config, layers: [] }, 'Application/VND.oci.image.manifest.v1+json; charset=utf-8');
    assert.equal(p.mediaType, MEDIA_TYPES.ociManifest);
  });

  it('an OCI manifest may omit mediaType (then the Content-Type, else the shape, decides)', () => {
    assert.equal(parse({ schemaVersion: 2, config, layers: [layer] }, MEDIA_TYPES.ociManifest).mediaType, MEDIA_TYPES.ociManifest);
    assert.equal(parse({ schemaVersion: 2, config, layers: [layer] }).mediaType, MEDIA_TYPES.ociManifest);
    assert.equal(parse({ schemaVersion: 2, config, layers: [layer] }, 'application/octet-stream').mediaType, MEDIA_TYPES.ociManifest);
  });

  it('a Docker schema 2 manifest needs its mediaType and layers', () => {
    const docker = { schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifest, config, layers: [layer] };
    assert.equal(parse(docker, MEDIA_TYPES.dockerManifest).mediaType, MEDIA_TYPES.dockerManifest);
    assert.equal(parse(docker).mediaType, MEDIA_TYPES.dockerManifest);
    invalid({ schemaVersion: 2, config, layers: [layer] }, MEDIA_TYPES.dockerManifest, /mediaType/);
    invalid({ schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifest, config }, MEDIA_TYPES.dockerManifest, /layers/);
  });

  it('artifacts: artifactType, a custom config type, the empty config, a subject', () => {
    const p = parse({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      artifactType: 'application/vnd.example',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: D1, size: 2, data: 'e30=' },
      layers: [],
      subject: { mediaType: MEDIA_TYPES.ociManifest, digest: D3, size: 100 },
      annotations: { a: 'b' },
    });
    assert.equal(p.artifactType, 'application/vnd.example');
    assert.equal(p.configMediaType, 'application/vnd.oci.empty.v1+json');
    assert.equal(p.subject?.digest, D3);
    assert.deepEqual(p.annotations, { a: 'b' });
    // The subject is not a blob the repository must hold.
    assert.deepEqual(p.blobs.map((b) => b.digest), [D1]);
  });

  it('layers with urls are kept for the URL policy', () => {
    const p = parse({ schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifest, config, layers: [{ ...layer, urls: ['https://x/y'] }] });
    assert.deepEqual(p.blobs[1]!.urls, ['https://x/y']);
    invalid({ schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifest, config, layers: [{ ...layer, urls: 'https://x/y' }] }, undefined, /urls/);
  });
});

describe('parseManifest: indexes', () => {
  it('an OCI index and a Docker manifest list name their children', () => {
    for (const mediaType of [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList]) {
      const p = parse({ schemaVersion: 2, mediaType, manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest: D3, size: 5, platform: { os: 'linux', architecture: 'amd64' } }] }, mediaType);
      assert.equal(p.kind, 'index');
      assert.equal(p.mediaType, mediaType);
      assert.deepEqual(p.blobs, []);
      assert.deepEqual(p.manifests.map((m) => m.digest), [D3]);
    }
  });
  it('an index without mediaType is recognised by its manifests array', () => {
    const p = parse({ schemaVersion: 2, manifests: [] });
    assert.equal(p.mediaType, MEDIA_TYPES.ociIndex);
    assert.equal(p.kind, 'index');
  });
  it('an index needs a manifests array of descriptors', () => {
    invalid({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex }, MEDIA_TYPES.ociIndex, /manifests/);
    invalid({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: {} }, MEDIA_TYPES.ociIndex, /manifests/);
    invalid({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [{ digest: D3, size: 1 }] }, MEDIA_TYPES.ociIndex, /mediaType/);
    invalid({ schemaVersion: 2, mediaType: MEDIA_TYPES.dockerManifestList, manifests: [] }, MEDIA_TYPES.ociIndex, /pushed as/);
  });
});

describe('parseManifest: refusals (MANIFEST_INVALID)', () => {
  it('not JSON, or not an object', () => {
    for (const body of ['', '{', 'nul', '[]', '1', '"x"', 'null', 'true']) invalid(body);
  });
  it('schemaVersion must be the number 2; schema 1 is refused by version and by media type', () => {
    for (const schemaVersion of [undefined, 1, 3, '2', 2.5]) invalid({ schemaVersion, config, layers: [] }, MEDIA_TYPES.ociManifest);
    invalid({ schemaVersion: 2, config, layers: [] }, MEDIA_TYPES.dockerSchema1Signed, /schema 1/);
    invalid({ schemaVersion: 2, config, layers: [] }, MEDIA_TYPES.dockerSchema1, /schema 1/);
  });
  it('the body mediaType must match a manifest Content-Type', () => {
    invalid({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config, layers: [] }, MEDIA_TYPES.dockerManifest, /pushed as/);
    invalid({ schemaVersion: 2, mediaType: 42, config, layers: [] }, MEDIA_TYPES.ociManifest, /mediaType/);
  });
  it('an unknown media type', () => {
    invalid({ schemaVersion: 2, mediaType: 'application/json', config, layers: [] }, undefined, /unsupported/);
  });
  it('descriptors: missing config, bad digest, bad size, missing mediaType', () => {
    invalid({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, layers: [] }, undefined, /config/);
    invalid({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: null, layers: [] }, undefined, /config/);
    invalid({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: [], layers: [] }, undefined, /config/);
    invalid({ schemaVersion: 2, config: { ...config, digest: 'sha256:abc' }, layers: [] }, undefined, /config\.digest/);
    invalid({ schemaVersion: 2, config: { ...config, digest: 5 }, layers: [] }, undefined, /config\.digest/);
    invalid({ schemaVersion: 2, config: { ...config, size: -1 }, layers: [] }, undefined, /config\.size/);
    invalid({ schemaVersion: 2, config: { ...config, size: 1.5 }, layers: [] }, undefined, /config\.size/);
    invalid({ schemaVersion: 2, config: { ...config, size: '10' }, layers: [] }, undefined, /config\.size/);
    invalid({ schemaVersion: 2, config: { ...config, mediaType: '' }, layers: [] }, undefined, /config\.mediaType/);
    invalid({ schemaVersion: 2, config, layers: [{ ...layer, digest: `md5:${'a'.repeat(32)}` }] }, undefined, /layers\[0\]\.digest/);
    invalid({ schemaVersion: 2, config, layers: 'x' }, undefined, /layers/);
    invalid({ schemaVersion: 2, config, layers: [], subject: 'x' }, undefined, /subject/);
    invalid({ schemaVersion: 2, config, layers: [], artifactType: 5 }, undefined, /artifactType/);
  });
  it('an image with a manifests array is refused', () => {
    invalid({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config, layers: [], manifests: [] }, MEDIA_TYPES.ociManifest, /manifests/);
  });
});

describe('media type helpers', () => {
  it('mediaTypeOf: own mediaType, else index for a manifests array, else image', () => {
    assert.equal(mediaTypeOf({ mediaType: 'x/y' }), 'x/y');
    assert.equal(mediaTypeOf({ manifests: [] }), MEDIA_TYPES.ociIndex);
    assert.equal(mediaTypeOf({}), MEDIA_TYPES.ociManifest);
  });
  it('baseMediaType strips parameters and case', () => {
    assert.equal(baseMediaType(' Application/JSON ; charset=utf-8'), 'application/json');
    assert.equal(baseMediaType(undefined), '');
  });
  it('isManifestMediaType knows the four schema-2 types only', () => {
    for (const t of [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerManifestList]) assert.ok(isManifestMediaType(t));
    for (const t of [MEDIA_TYPES.dockerSchema1Signed, 'application/json', '']) assert.ok(!isManifestMediaType(t));
  });
  it('the manifest size limit is 4 MiB', () => {
    assert.equal(MAX_MANIFEST_BYTES, 4 * 1024 * 1024);
  });
});
