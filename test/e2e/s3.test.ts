// Wharf on Ceph RGW through the s3 driver, with real clients, and Distribution 2.8 (Debian's
// docker-registry, its own s3 driver) on the same bucket and rootdirectory: each serves what the
// other pushed, with the same digests. A 12 MB layer makes both use multipart uploads
// (chunksize 5 MiB), and blob GETs are redirected to presigned RGW URLs that skopeo follows.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { inspectDigest, makeTinyImage, readOciImage, skopeoCopy, startReference, startWharf, tempDir, type RegistryServer } from './harness.js';
import { openUploads, startRgw, type Rgw } from '../storage/rgw.js';

describe('s3 storage on Ceph RGW: Wharf and Distribution 2.8 share a bucket', () => {
  let rgw: Rgw;
  let bucket: string;
  let storage: string[];
  const servers: RegistryServer[] = [];

  before(async () => {
    rgw = await startRgw();
    bucket = await rgw.createBucket('e2e');
    storage = [
      '  s3:',
      `    region: ${rgw.region}`,
      `    regionendpoint: ${rgw.endpoint}`,
      `    bucket: ${bucket}`,
      `    accesskey: ${rgw.accessKey}`,
      `    secretkey: ${rgw.secretKey}`,
      '    secure: false',
      '    v4auth: true',
      '    chunksize: 5242880',
      '    rootdirectory: /shared/root',
    ];
  });

  after(async () => {
    for (const s of servers) await s.stop();
    if (bucket) {
      const leaked = await openUploads(rgw, bucket);
      await rgw.removeBucket(bucket);
      assert.deepEqual(leaked, [], 'no multipart upload is left open');
    }
  });

  async function start(kind: 'wharf' | 'reference'): Promise<RegistryServer> {
    const server = kind === 'wharf' ? await startWharf({ storage }) : await startReference(undefined, { storage });
    servers.push(server);
    return server;
  }

  async function stop(server: RegistryServer): Promise<void> {
    await server.stop();
    servers.splice(servers.indexOf(server), 1);
  }

  /** Pull REF into a fresh OCI layout and return the blobs skopeo wrote (it verifies each digest). */
  async function pull(ref: string): Promise<string[]> {
    const layout = `${tempDir('s3-pull')}/layout`;
    await skopeoCopy(`docker://${ref}`, `oci:${layout}:t`);
    return readOciImage(layout, 't').blobs;
  }

  it('Wharf pushes and pulls a 12 MB-layer image; docker-registry serves it from the same bucket', async () => {
    const image = await makeTinyImage(`${tempDir('s3-img')}/layout`, 'v1', 12);
    const wharf = await start('wharf');
    await skopeoCopy(image.ref, `docker://${wharf.host}/s3/app:v1`);
    assert.equal(await inspectDigest(`${wharf.host}/s3/app:v1`), image.digest);
    assert.deepEqual((await pull(`${wharf.host}/s3/app:v1`)).sort(), [...image.blobs].sort());

    // Distribution's layout, under the rootdirectory.
    const listed = await rgw.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'shared/root/docker/registry/v2/blobs/' }));
    const layer = image.blobs.map((d) => d.slice('sha256:'.length)).find((hex) =>
      (listed.Contents ?? []).some((c) => c.Key === `shared/root/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data` && (c.Size ?? 0) > 12_000_000),
    );
    assert.ok(layer, 'the 12 MB layer is at blobs/sha256/<2>/<hex>/data');
    await stop(wharf);

    const reference = await start('reference');
    assert.equal(await inspectDigest(`${reference.host}/s3/app:v1`), image.digest);
    assert.deepEqual((await pull(`${reference.host}/s3/app:v1`)).sort(), [...image.blobs].sort());
    await stop(reference);
  });

  it('docker-registry pushes to the bucket; Wharf serves the same image, digests unchanged', async () => {
    const image = await makeTinyImage(`${tempDir('s3-img')}/layout`, 'v2', 12);
    const reference = await start('reference');
    await skopeoCopy(image.ref, `docker://${reference.host}/s3/other:v2`);
    assert.equal(await inspectDigest(`${reference.host}/s3/other:v2`), image.digest);
    await stop(reference);

    const wharf = await start('wharf');
    assert.equal(await inspectDigest(`${wharf.host}/s3/other:v2`), image.digest);
    assert.deepEqual((await pull(`${wharf.host}/s3/other:v2`)).sort(), [...image.blobs].sort());
    // Both repositories are in the catalog Wharf lists from the bucket.
    const catalog = (await (await fetch(`${wharf.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, ['s3/app', 's3/other']);
    // A blob GET is redirected to a presigned RGW URL (redirects are on unless storage.redirect.disable).
    const res = await fetch(`${wharf.url}/v2/s3/other/blobs/${image.blobs[0]}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    assert.ok(res.headers.get('location')?.startsWith(`${rgw.endpoint}/${bucket}/shared/root/docker/registry/v2/blobs/`));
    await stop(wharf);
  });
});
