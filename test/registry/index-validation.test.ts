// validation.manifests.indexes: which children of an image index must be in the repository first.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Registry } from '../../src/registry/registry.js';
import { RegistryError } from '../../src/registry/errors.js';
import type { ManifestPolicy } from '../../src/registry/manifests.js';
import { InMemoryDriver } from '../../src/storage/inmemory.js';

const sha = (s: string): string => 'sha256:' + createHash('sha256').update(s).digest('hex');
const INDEX = 'application/vnd.oci.image.index.v1+json';

function index(children: { os: string; architecture: string }[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: INDEX,
      manifests: children.map((p) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(`${p.os}/${p.architecture}`), size: 100, platform: p })),
    }),
  );
}

async function push(rule: ManifestPolicy['indexChildren']): Promise<string[] | 'ok'> {
  const registry = new Registry(new InMemoryDriver(), { deleteEnabled: true, manifestPolicy: { allowURLs: [], denyURLs: [], indexChildren: rule } });
  try {
    await registry.manifests.put('app', 'multi', index([{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }]), INDEX);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof RegistryError && err.code === 'MANIFEST_BLOB_UNKNOWN', String(err));
    return (err.detail as { digests: string[] }).digests;
  }
}

describe('validation.manifests.indexes', () => {
  it('all (the default, and 2.8): every child must exist', async () => {
    assert.deepEqual(await push(undefined), [sha('linux/amd64'), sha('linux/arm64')].sort());
    assert.deepEqual(await push('all'), [sha('linux/amd64'), sha('linux/arm64')].sort());
  });

  it('none: an index is accepted before its images', async () => {
    assert.equal(await push('none'), 'ok');
  });

  it('list: only the listed platforms must exist; an empty list means all', async () => {
    assert.deepEqual(await push({ platforms: [{ os: 'linux', architecture: 'arm64' }] }), [sha('linux/arm64')]);
    assert.equal(await push({ platforms: [{ os: 'windows', architecture: 'amd64' }] }), 'ok');
    assert.deepEqual(await push({ platforms: [] }), [sha('linux/amd64'), sha('linux/arm64')].sort());
  });
});
