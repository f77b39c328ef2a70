// Wharf on Azurite through the azure driver, with real clients: skopeo pushes and pulls an image
// with a 12 MB layer (several 4 MiB append blocks), blobs land under Distribution 2.8's names,
// blob GETs answer 307 to a read-only SAS URL that serves the bytes (skopeo follows it), and a
// chunked push moves between two Wharf instances on the same container.
// No cross-registry check is possible here: Debian's docker-registry (Distribution 2.8) is built
// without the azure driver, and upstream 2.8's driver only speaks to https://<account>.blob.<realm>.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerClient } from '@azure/storage-blob';
import { makeTinyImage, tempDir } from './harness.js';
import { bigLayerRoundTrip, chunkedPushAcross, followBlobRedirect, largestBlob, pullImage, pushImage, Registries, storageYaml } from './object-stores.js';
import { blobNames, startAzurite, type Azurite } from '../storage/azurite.js';
import { blobDataPath } from '../storage/helpers.js';

describe('azure storage on Azurite: skopeo push and pull, SAS redirects', () => {
  let azurite: Azurite;
  let container: ContainerClient;
  let storage: string[];
  const registries = new Registries();

  before(async () => {
    azurite = await startAzurite();
    container = await azurite.createContainer('e2e');
    storage = storageYaml('azure', azurite.options(container.containerName));
  });

  after(async () => {
    await registries.stopAll();
    await container?.delete();
  });

  it('skopeo pushes and pulls a 12 MB-layer image; a blob GET is a 307 to a SAS URL serving the bytes', async () => {
    const image = await makeTinyImage(`${tempDir('az-img')}/layout`, 'v1', 12);
    const wharf = await registries.wharf(storage);
    await pushImage(image, `${wharf.host}/az/app:v1`);

    // Distribution 2.8's names: the path with its leading '/', no rootdirectory.
    const names = await blobNames(container, '/docker/registry/v2/');
    for (const d of image.blobs) assert.ok(names.includes(`/${blobDataPath(d)}`), `blob ${d}`);
    assert.ok(names.includes('/docker/registry/v2/repositories/az/app/_manifests/tags/v1/current/link'));
    assert.ok(!names.some((n) => n.includes('/_uploads/')), 'no upload is left behind');

    // skopeo follows the 307s to Azurite and verifies every digest.
    await pullImage(image, `${wharf.host}/az/app:v1`);

    const layer = await largestBlob(image, async (d) => (await container.getBlobClient(`/${blobDataPath(d)}`).getProperties()).contentLength ?? 0);
    assert.ok(layer.size > 12_000_000, 'the 12 MB layer');
    const location = await followBlobRedirect(wharf, 'az/app', layer.digest);
    assert.ok(location.startsWith(`${azurite.endpoint}/${container.containerName}//docker/registry/v2/blobs/sha256/`), location);
    assert.equal(new URL(location).searchParams.get('sp'), 'r');
  });

  it('storage.redirect.disable serves blobs from Wharf; a chunked push moves between two instances', async () => {
    const redirectOff = [...storage, ...storageYaml('redirect', { disable: true })];
    // The middle chunk goes to the other instance (same container): it resumes the append blob.
    await chunkedPushAcross(await registries.wharf(redirectOff), await registries.wharf(redirectOff), 'az/chunked');
  });

  it('skopeo pushes and pulls an image with a 1 GiB layer; every byte comes back', async () => {
    const wharf = await registries.wharf(storage);
    await bigLayerRoundTrip(wharf.host, 'az/big');
    await registries.stop(wharf);
  });
});
