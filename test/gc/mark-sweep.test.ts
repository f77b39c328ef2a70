import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { markAndSweep } from '../../src/gc/mark-sweep.js';
import { Registry } from '../../src/registry/registry.js';
import { InMemoryDriver } from '../../src/storage/inmemory.js';
import { pathFor } from '../../src/storage/paths.js';
import { imageWriter, OCI_INDEX, OCI_MANIFEST } from './image-writer.js';


function fixture() {
  const driver = new InMemoryDriver();
  const registry = new Registry(driver, { deleteEnabled: true, cache: { descriptors: false, descriptorEntries: 0, manifestBytes: 0 } });
  const { blob, image } = imageWriter(registry, 64);
  const exists = (digest: string) =>
    driver.stat(pathFor({ kind: 'blobData', digest })).then(
      () => true,
      () => false,
    );
  return { driver, registry, blob, image, exists };
}

describe('garbage collection (mark and sweep)', () => {
  it('sweeps only blobs no manifest references, across repositories', async () => {
    const f = fixture();
    const shared = await f.blob('a');
    await f.registry.blobs.mount('b', 'a', shared.digest);
    const kept = await f.image('a', 'v1', [shared]);
    const other = await f.image('b', 'v1', [shared]);
    const dropped = await f.image('a', 'old');
    await f.registry.manifests.delete('a', dropped.digest);
    const orphan = await f.blob('a');
    const result = await markAndSweep(f.driver, { dryRun: false, removeUntagged: false });
    for (const d of [shared.digest, kept.digest, kept.config, other.digest, other.config]) assert.ok(await f.exists(d), `kept ${d}`);
    for (const d of [dropped.digest, dropped.config, ...dropped.layers, orphan.digest]) assert.equal(await f.exists(d), false, `swept ${d}`);
    assert.deepEqual(new Set(result.blobsDeleted), new Set([dropped.digest, dropped.config, ...dropped.layers, orphan.digest]));
    assert.deepEqual((await f.registry.manifests.get('a', 'v1')).digest, kept.digest);
  });

  it('a dry run reports the same and deletes nothing', async () => {
    const f = fixture();
    await f.image('a', 'v1');
    const orphan = await f.blob('a');
    const lines: string[] = [];
    const result = await markAndSweep(f.driver, { dryRun: true, removeUntagged: true, emit: (l) => lines.push(l) });
    assert.ok(await f.exists(orphan.digest));
    assert.deepEqual(result.blobsDeleted, []);
    assert.ok(lines.includes(`blob eligible for deletion: ${orphan.digest}`));
    assert.ok(lines.some((l) => /^\n3 blobs marked, 1 blobs and 0 manifests eligible for deletion$/.test(l)), lines.join('|'));
  });

  it('--delete-untagged removes untagged manifests but keeps the children of a tagged index and referrers of kept manifests', async () => {
    const f = fixture();
    const amd = await f.image('m', 'sha-only-1');
    const arm = await f.image('m', 'sha-only-2');
    await f.registry.tags.untag('m', 'sha-only-1');
    await f.registry.tags.untag('m', 'sha-only-2');
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [amd, arm].map((m, i) => ({
          mediaType: OCI_MANIFEST,
          digest: m.digest,
          size: m.size,
          platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' },
        })),
      }),
    );
    const { digest: indexDigest } = await f.registry.manifests.put('m', 'latest', index, OCI_INDEX);
    const signature = await f.image('m', 'sig-tmp', undefined, {
      artifactType: 'application/example.signature',
      subject: { mediaType: OCI_INDEX, digest: indexDigest, size: index.length },
    });
    await f.registry.tags.untag('m', 'sig-tmp');
    const stale = await f.image('m', 'gone');
    await f.registry.tags.untag('m', 'gone');

    const result = await markAndSweep(f.driver, { dryRun: false, removeUntagged: true });
    assert.deepEqual(result.manifestsDeleted, [{ name: 'm', digest: stale.digest }]);
    for (const m of [amd, arm]) {
      assert.equal((await f.registry.manifests.get('m', m.digest)).digest, m.digest);
      for (const d of [m.config, ...m.layers]) assert.ok(await f.exists(d));
    }
    assert.equal((await f.registry.manifests.get('m', signature.digest)).digest, signature.digest);
    assert.equal((await f.registry.manifests.referrersOf('m', indexDigest)).length, 1);
    for (const d of [stale.digest, stale.config, ...stale.layers]) assert.equal(await f.exists(d), false);
    await assert.rejects(f.registry.manifests.get('m', stale.digest), /manifest unknown/);
  });

  it('a manifest whose content is missing is reported and collection continues', async () => {
    const f = fixture();
    const broken = await f.image('x', 'v1');
    const fine = await f.image('y', 'v1');
    const orphan = await f.blob('y');
    await f.driver.delete(pathFor({ kind: 'blobDir', digest: broken.digest }));
    const result = await markAndSweep(f.driver, { dryRun: false, removeUntagged: false });
    assert.equal(result.problems.length, 1);
    assert.match(result.problems[0]!, new RegExp(`x: manifest ${broken.digest}`));
    assert.ok(await f.exists(fine.config));
    assert.equal(await f.exists(orphan.digest), false);
  });
});
