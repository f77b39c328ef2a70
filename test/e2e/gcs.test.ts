// Wharf on the fake Cloud Storage server (test/storage/fake-gcs: a fake written from Google's API
// documents, which checks OAuth tokens and V4 signatures; no real Google Cloud Storage is used)
// through the gcs driver, with real clients: skopeo pushes and pulls a two-layer image with a
// 12 MB layer (several 5 MiB resumable-upload chunks), objects land under Distribution's names,
// blob GETs answer 307 to a V4 signed URL that serves the bytes (skopeo follows it), and a chunked
// push moves between two Wharf instances. Wharf reaches the fake through STORAGE_EMULATOR_HOST.
// No cross-registry check is possible: Debian's docker-registry (2.8) is built without the gcs
// driver, and upstream's driver only speaks to Google's own endpoints.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { makeTinyImage, tempDir } from './harness.js';
import { chunkedPushAcross, followBlobRedirect, largestBlob, pullImage, pushImage, Registries, storageYaml } from './object-stores.js';
import { startFakeGcs, type GcsFixture } from '../storage/gcs-fake.js';
import { blobDataPath } from '../storage/helpers.js';

describe('gcs storage on the fake Cloud Storage server: skopeo push and pull, signed redirects', () => {
  let gcs: GcsFixture;
  let bucket: string;
  const registries = new Registries();

  before(async () => {
    gcs = await startFakeGcs();
    bucket = gcs.createBucket('e2e');
    // Wharf's children inherit it: the driver (and Google's client library) use this endpoint.
    process.env.STORAGE_EMULATOR_HOST = gcs.fake.url;
  });

  after(async () => {
    await registries.stopAll();
    await gcs?.stop();
  });

  it('skopeo pushes and pulls a 12 MB-layer image (keyfile); a blob GET is a 307 to a V4 signed URL serving the bytes', async () => {
    const image = await makeTinyImage(`${tempDir('gcs-img')}/layout`, 'v1', 12);
    const wharf = await registries.wharf(storageYaml('gcs', { bucket, keyfile: gcs.writeKeyFile(), chunksize: 5242880 }));
    await pushImage(image, `${wharf.host}/gc/app:v1`);

    // Distribution's names: the path without its leading '/', no rootdirectory.
    const names = gcs.fake.store.names(bucket);
    for (const d of image.blobs) assert.ok(names.includes(blobDataPath(d)), `blob ${d}`);
    assert.ok(names.includes('docker/registry/v2/repositories/gc/app/_manifests/tags/v1/current/link'));
    assert.ok(!names.some((n) => n.includes('/_uploads/')), 'no upload is left behind');
    const sessions = [...gcs.fake.store.sessions.values()];
    assert.ok(sessions.some((s) => s.state === 'done' && s.persisted >= 10 * 1024 * 1024), 'the big layer went up through a resumable session in chunks');

    // skopeo follows the 307s to the fake and verifies every digest.
    await pullImage(image, `${wharf.host}/gc/app:v1`);

    const layer = await largestBlob(image, (d) => gcs.fake.store.get(bucket, blobDataPath(d))?.size ?? 0);
    assert.ok(layer.size > 12_000_000, 'the 12 MB layer');
    const location = await followBlobRedirect(wharf, 'gc/app', layer.digest);
    assert.ok(location.startsWith(`${gcs.fake.url}/${bucket}/docker/registry/v2/blobs/sha256/`), location);
    assert.equal(new URL(location).searchParams.get('X-Goog-Algorithm'), 'GOOG4-RSA-SHA256');
  });

  it('inline credentials and rootdirectory from the YAML; storage.redirect.disable serves blobs from Wharf; a chunked push moves between two instances', async () => {
    // The key's fields under `credentials:`, the PEM as a block scalar.
    const storage = [...storageYaml('gcs', gcs.options(bucket, { rootdirectory: '/wharf/root' })), ...storageYaml('redirect', { disable: true })];
    const a = await registries.wharf(storage);
    const b = await registries.wharf(storage);
    const image = await makeTinyImage(`${tempDir('gcs-img2')}/layout`, 'v2', 3);
    await pushImage(image, `${a.host}/gc/other:v2`);
    await pullImage(image, `${b.host}/gc/other:v2`);
    assert.ok(gcs.fake.store.names(bucket).includes('wharf/root/docker/registry/v2/repositories/gc/other/_manifests/tags/v2/current/link'));

    // The middle chunk goes to the other instance (same bucket): it resumes the upload session.
    await chunkedPushAcross(a, b, 'gc/chunked');
  });
});
