// Wharf on the fake OSS server (test/storage/fake-oss: written from Aliyun's published OSS API
// reference, it checks every request's V1 signature; no OSS emulator exists to test against) through
// the oss driver, with a real client: skopeo pushes and pulls an image whose 12 MB layer spans
// several 5 MiB parts, objects land under Distribution's oss names, blob GETs answer 307 to a
// signed OSS URL that skopeo follows, and a chunked push moves between two Wharf instances.
// No cross-registry check: Debian's docker-registry (Distribution 2.8) is built without its oss driver.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inspectDigest, makeTinyImage, tempDir } from './harness.js';
import { chunkedPushAcross, followBlobRedirect, largestBlob, pullImage, pushImage, Registries, storageYaml } from './object-stores.js';
import { startFakeOss, type FakeOss } from '../storage/fake-oss/index.js';
import { blobDataPath } from '../storage/helpers.js';

describe('oss storage on the fake OSS server: skopeo push and pull, signed redirects', () => {
  let oss: FakeOss;
  let bucket: string;
  let storage: string[];
  const registries = new Registries();

  before(async () => {
    oss = await startFakeOss();
    bucket = oss.createBucket('e2e');
    storage = storageYaml('oss', oss.options(bucket, { encrypt: true, chunksize: 5242880, rootdirectory: '/shared/root' }));
  });

  after(async () => {
    await registries.stopAll();
    if (oss) {
      const leaked = oss.openUploads(bucket);
      const refused = oss.log.filter((r) => r.status === 403);
      await oss.stop();
      assert.deepEqual(leaked, [], 'no multipart upload is left open');
      assert.deepEqual(refused, [], 'every request Wharf and skopeo made was signed correctly');
    }
  });

  it('skopeo pushes and pulls a 12 MB-layer image; a blob GET is a 307 to a signed URL serving the bytes', async () => {
    const image = await makeTinyImage(`${tempDir('oss-img')}/layout`, 'v1', 12);
    const wharf = await registries.wharf(storage);
    await pushImage(image, `${wharf.host}/oss/app:v1`);

    // Distribution's oss names under the rootdirectory; every blob encrypted as `encrypt` asks.
    const keys = oss.keys(bucket, 'shared/root/docker/registry/v2/');
    for (const digest of image.blobs) {
      const key = `shared/root/${blobDataPath(digest)}`;
      assert.ok(keys.includes(key), `blob ${digest}`);
      assert.equal(oss.state.store.get(bucket, key)?.encryption?.algorithm, 'AES256');
    }
    assert.ok(keys.includes('shared/root/docker/registry/v2/repositories/oss/app/_manifests/tags/v1/current/link'));
    assert.ok(!keys.some((k) => k.includes('/_uploads/')), 'no upload is left behind');
    const layer = await largestBlob(image, (d) => oss.state.store.get(bucket, `shared/root/${blobDataPath(d)}`)!.size);
    assert.ok(layer.size > 12_000_000, 'the 12 MB layer, above chunksize');
    assert.ok(oss.log.some((r) => r.operation === 'UploadPart'), 'the large layer went up in parts');

    // skopeo follows the 307s to the fake OSS and verifies every digest.
    const before = oss.log.filter((r) => r.operation === 'GetObject' && r.key.includes('/blobs/')).length;
    await pullImage(image, `${wharf.host}/oss/app:v1`);
    assert.ok(oss.log.filter((r) => r.operation === 'GetObject' && r.key.includes('/blobs/')).length > before, 'blobs came from OSS');

    const location = await followBlobRedirect(wharf, 'oss/app', layer.digest);
    assert.ok(location.startsWith(`http://${oss.endpoint}/shared/root/docker/registry/v2/blobs/sha256/`), location);
    const query = new URL(location).searchParams;
    assert.equal(query.get('OSSAccessKeyId'), oss.accessKeyId);
    assert.ok(Number(query.get('Expires')) > Date.now() / 1000 + 19 * 60, 'valid about 20 minutes');
  });

  it('storage.redirect.disable serves blobs from Wharf; a chunked push moves between two instances', async () => {
    const redirectOff = [...storage, ...storageYaml('redirect', { disable: true })];
    // The middle chunk goes to the other instance (same bucket): it resumes the multipart upload.
    await chunkedPushAcross(await registries.wharf(redirectOff), await registries.wharf(redirectOff), 'oss/chunked');
    // And a third instance, started afresh, pulls the first image from the same bucket.
    const c = await registries.wharf(storage);
    assert.match(await inspectDigest(`${c.host}/oss/app:v1`), /^sha256:[0-9a-f]{64}$/);
  });
});
