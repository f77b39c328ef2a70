import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import pino from 'pino';
import { BlobFence } from '../../src/registry/gc-fence.js';
import { OnlineCollector } from '../../src/gc/online.js';
import { Registry } from '../../src/registry/registry.js';
import { InMemoryDriver } from '../../src/storage/inmemory.js';
import { pathFor } from '../../src/storage/paths.js';

const sha = (b: Buffer | string): string => 'sha256:' + createHash('sha256').update(b).digest('hex');
const log = pino({ level: 'silent' });

/** The in-memory driver whose blob files can be made to look old (their modTime is what grace checks). */
class AgingDriver extends InMemoryDriver {
  readonly old = new Set<string>();
  override async stat(path: string) {
    const info = await super.stat(path);
    return this.old.has(path) ? { ...info, modTime: new Date(0) } : info;
  }
}

async function pushBlob(registry: Registry, driver: AgingDriver, repo: string, content: string, old = true): Promise<string> {
  const digest = sha(content);
  await driver.putContent(pathFor({ kind: 'blobData', digest }), Buffer.from(content));
  await registry.blobs.link(repo, digest, content.length);
  if (old) driver.old.add(pathFor({ kind: 'blobData', digest }));
  return digest;
}

async function pushImage(registry: Registry, driver: AgingDriver, repo: string, tag: string, layers: string[]): Promise<{ digest: string; size: number }> {
  const config = await pushBlob(registry, driver, repo, `{"tag":"${tag}"}`);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: `{"tag":"${tag}"}`.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(l), size: l.length })),
  });
  const put = await registry.manifests.put(repo, tag, Buffer.from(manifest), 'application/vnd.oci.image.manifest.v1+json');
  driver.old.add(pathFor({ kind: 'blobData', digest: put.digest }));
  return { digest: put.digest, size: Buffer.byteLength(manifest) };
}

describe('BlobFence', () => {
  it('refuses to claim a digest touched since keepSince; a claimed digest makes lookups wait for the release', async () => {
    const fence = new BlobFence();
    fence.enable();
    fence.touch('sha256:a');
    assert.equal(fence.claim('sha256:a', Date.now() - 1000), null);
    const claim = fence.claim('sha256:b', Date.now() - 1000);
    assert.ok(claim);
    let passed = false;
    const waiting = fence.pass('sha256:b').then(() => (passed = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(passed, false, 'the lookup waits while the blob is being deleted');
    claim.release();
    await waiting;
    assert.equal(passed, true);
    fence.prune(Date.now() + 1);
    assert.equal(fence.size, 0);
  });

  it('costs nothing and never blocks until enabled', async () => {
    const fence = new BlobFence();
    fence.touch('sha256:a');
    assert.equal(fence.size, 0);
    await fence.pass('sha256:a');
  });
});

describe('OnlineCollector', () => {
  it('deletes old unreferenced blobs, keeps referenced, young and recently touched ones, and no cache answers for what it deleted', async () => {
    const driver = new AgingDriver();
    const fence = new BlobFence();
    const registry = new Registry(driver, { deleteEnabled: true, fence });
    const grace = 100;
    const collector = new OnlineCollector(driver, fence, { intervalMs: 60_000, graceMs: grace }, log, {
      forgetBlobs: (d) => registry.forgetBlobs(d),
    });
    const shared = await pushBlob(registry, driver, 'app', 'layer-shared');
    const onlyOld = await pushBlob(registry, driver, 'app', 'layer-only-old');
    await pushImage(registry, driver, 'app', 'keep', ['layer-shared']);
    const gone = await pushImage(registry, driver, 'app', 'gone', ['layer-shared', 'layer-only-old']);
    await registry.manifests.delete('app', gone.digest);
    const touched = await pushBlob(registry, driver, 'app', 'layer-touched');
    await new Promise((r) => setTimeout(r, grace + 50)); // everything above is now past the grace period
    // Data written just now (an upload finishing, by any instance): young, kept.
    const young = sha('layer-young');
    await driver.putContent(pathFor({ kind: 'blobData', digest: young }), Buffer.from('layer-young'));
    // A HEAD within the grace period: kept.
    assert.ok(await registry.blobs.stat('app', touched));

    const run = await collector.runOnce();
    assert.equal(await registry.blobs.stat('app', onlyOld), null, 'no cached descriptor survives the deletion');
    assert.equal(await registry.blobs.statGlobal(onlyOld), null);
    assert.ok(await registry.blobs.statGlobal(shared));
    assert.ok(await registry.blobs.statGlobal(young), 'younger than the grace period');
    assert.ok(await registry.blobs.statGlobal(touched), 'touched within the grace period');
    // The deleted image's layer, config and manifest were unreferenced and old.
    assert.equal(run.blobsDeleted, 3);
    assert.equal(run.bytesReclaimed, 'layer-only-old'.length + '{"tag":"gone"}'.length + gone.size);
    assert.equal(run.blobsKept, 2);
    await collector.stop();
  });

  it('with no grace period, a blob touched during the run is kept; untouched garbage goes', async () => {
    const driver = new AgingDriver();
    const fence = new BlobFence();
    const registry = new Registry(driver, { deleteEnabled: true, fence });
    const collector = new OnlineCollector(driver, fence, { intervalMs: 60_000, graceMs: 0 }, log, { forgetBlobs: (d) => registry.forgetBlobs(d) });
    const a = await pushBlob(registry, driver, 'app', 'a');
    const b = await pushBlob(registry, driver, 'app', 'b');
    await new Promise((r) => setTimeout(r, 5)); // the links above were touched before the run began
    // The run starts; a HEAD for `a` arrives while it marks (before the sweep reaches it).
    const running = collector.runOnce();
    await registry.blobs.stat('app', a);
    const run = await running;
    assert.ok(await registry.blobs.statGlobal(a));
    assert.equal(await registry.blobs.statGlobal(b), null);
    assert.equal(run.blobsDeleted, 1);
    await collector.stop();
  });
});
