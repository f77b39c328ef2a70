// The queue goes through the storage driver, so it works on any: the inmemory driver, and the s3
// driver on Ceph RGW (scripts/services/ceph-rgw-start.sh), where a restarted registry delivers
// what the previous one queued, and the queue's objects sit beside Distribution's tree.
import assert from 'node:assert/strict';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { after, describe, test } from 'node:test';
import { startRegistry, type RegistrySettings } from '../../src/cli/start.js';
import { makeSettings, pushImage } from '../server/helpers.js';
import { startRgw } from '../storage/rgw.js';
import { endpoint } from './helpers.js';
import { startReceiver } from './receiver.js';

describe('the queue on other storage drivers', { timeout: 240_000 }, () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('inmemory', async () => {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.stop());
    const started = await startRegistry({
      ...makeSettings({ inmemory: true }),
      notifications: { includeReferences: false, endpoints: [endpoint(receiver.url)] },
    });
    cleanups.push(() => started.close());
    const image = await pushImage({ port: started.port }, 'mem/app', 'v1');
    await receiver.waitFor(() => receiver.accepted.length === 3, '3 events');
    assert.deepEqual(receiver.accepted.map((e) => e.target.digest), [image.configDigest, image.layerDigest, image.digest]);
  });

  test('s3 (Ceph RGW): queued by one process, delivered by the next on the same bucket', async () => {
    const rgw = await startRgw();
    const bucket = await rgw.createBucket('notify');
    cleanups.push(() => rgw.removeBucket(bucket));
    const receiver = await startReceiver();
    cleanups.push(() => receiver.stop());
    await receiver.stop();
    const settings: RegistrySettings = {
      ...makeSettings({}),
      storage: { name: 's3', options: rgw.options(bucket, { rootdirectory: '/registry' }) },
      notifications: { includeReferences: false, endpoints: [endpoint(receiver.url, { threshold: 1, backoff: 60_000 })], instance: 'rgw-node' },
    };
    const first = await startRegistry(settings);
    const image = await pushImage({ port: first.port }, 's3/app', 'v1');
    const keys = async () =>
      ((await rgw.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'registry/wharf/' }))).Contents ?? []).map((o) => o.Key!).sort();
    const queued = (await keys()).filter((k) => k.includes('/endpoints/'));
    assert.equal(queued.length, 3, `one batch per push request: ${queued.join(' ')}`);
    assert.ok(queued.every((k) => k.startsWith('registry/wharf/notifications/rgw-node/endpoints/')));
    await first.close();

    await receiver.start();
    const second = await startRegistry(settings);
    cleanups.push(() => second.close());
    await receiver.waitFor(() => receiver.accepted.length === 3, 'the 3 events queued by the first process', 30_000);
    assert.deepEqual(receiver.accepted.map((e) => e.target.digest), [image.configDigest, image.layerDigest, image.digest]);
    const deadline = Date.now() + 10_000;
    while ((await keys()).some((k) => k.includes('/endpoints/')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await keys(), ['registry/wharf/notifications/rgw-node/lease'], 'delivered batches are deleted; the lease stays');
  });
});
