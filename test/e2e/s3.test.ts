// Wharf on Ceph RGW through the s3 driver, with real clients, and Distribution 2.8 (Debian's
// docker-registry, its own s3 driver) on the same bucket and rootdirectory: each serves what the
// other pushed, with the same digests. A 12 MB layer makes both use multipart uploads
// (chunksize 5 MiB), and blob GETs are redirected to presigned RGW URLs that skopeo follows.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { makeTinyImage, tempDir } from './harness.js';
import { assertServes, pushImage, Registries, roundTrip, storageYaml } from './object-stores.js';
import { blobDataPath } from '../storage/helpers.js';
import { openUploads, startRgw, type Rgw } from '../storage/rgw.js';

describe('s3 storage on Ceph RGW: Wharf and Distribution 2.8 share a bucket', () => {
  let rgw: Rgw;
  let bucket: string;
  let storage: string[];
  const registries = new Registries();

  before(async () => {
    rgw = await startRgw();
    bucket = await rgw.createBucket('e2e');
    storage = storageYaml('s3', rgw.options(bucket, { v4auth: true, chunksize: 5242880, rootdirectory: '/shared/root' }));
  });

  after(async () => {
    await registries.stopAll();
    if (bucket) {
      const leaked = await openUploads(rgw, bucket);
      await rgw.removeBucket(bucket);
      assert.deepEqual(leaked, [], 'no multipart upload is left open');
    }
  });

  it('Wharf pushes and pulls a 12 MB-layer image; docker-registry serves it from the same bucket', async () => {
    const image = await makeTinyImage(`${tempDir('s3-img')}/layout`, 'v1', 12);
    const wharf = await registries.wharf(storage);
    await roundTrip(image, `${wharf.host}/s3/app:v1`);

    // Distribution's layout, under the rootdirectory.
    const listed = await rgw.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'shared/root/docker/registry/v2/blobs/' }));
    const layer = image.blobs.find((d) => (listed.Contents ?? []).some((c) => c.Key === `shared/root/${blobDataPath(d)}` && (c.Size ?? 0) > 12_000_000));
    assert.ok(layer, 'the 12 MB layer is at blobs/sha256/<2>/<hex>/data');
    await registries.stop(wharf);

    const reference = await registries.reference(storage);
    await assertServes(image, `${reference.host}/s3/app:v1`);
    await registries.stop(reference);
  });

  it('docker-registry pushes to the bucket; Wharf serves the same image, digests unchanged', async () => {
    const image = await makeTinyImage(`${tempDir('s3-img')}/layout`, 'v2', 12);
    const reference = await registries.reference(storage);
    await pushImage(image, `${reference.host}/s3/other:v2`);
    await registries.stop(reference);

    const wharf = await registries.wharf(storage);
    await assertServes(image, `${wharf.host}/s3/other:v2`);
    // Both repositories are in the catalog Wharf lists from the bucket.
    const catalog = (await (await fetch(`${wharf.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, ['s3/app', 's3/other']);
    // A blob GET is redirected to a presigned RGW URL (redirects are on unless storage.redirect.disable).
    const res = await fetch(`${wharf.url}/v2/s3/other/blobs/${image.blobs[0]}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    assert.ok(res.headers.get('location')?.startsWith(`${rgw.endpoint}/${bucket}/shared/root/docker/registry/v2/blobs/`));
    await registries.stop(wharf);
  });
});
