// Wharf on Ceph RGW's Swift API through the swift driver, with real clients, and Distribution 2.8
// (Debian's docker-registry, its own swift driver) on the same container and prefix: each serves
// what the other pushed, with the same digests. A 3 MiB layer with chunksize 1 MiB makes both
// write segmented dynamic large objects, and Wharf's blob GETs are redirected to RGW temp URLs
// that skopeo follows.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inspectDigest, makeTinyImage, skopeoCopy, tempDir } from './harness.js';
import { assertServes, bigLayerRoundTrip, pushImage, Registries, roundTrip, storageYaml } from './object-stores.js';
import { startRgwSwift, type RgwSwift } from '../storage/rgw-swift.js';

const MiB = 1024 * 1024;

describe('swift storage on Ceph RGW: Wharf and Distribution 2.8 share a container', () => {
  let rgw: RgwSwift;
  let container: string;
  let storage: string[];
  const registries = new Registries();

  before(async () => {
    rgw = await startRgwSwift();
    container = rgw.containerName('e2e');
    storage = storageYaml('swift', rgw.options(container, { chunksize: MiB, prefix: '/shared' }));
  });

  after(async () => {
    await registries.stopAll();
    if (container) await rgw.removeContainer(container);
  });

  /** The segments of a blob's data file: its manifest's X-Object-Manifest, listed. */
  async function segmentsOf(digest: string): Promise<number[]> {
    const hex = digest.slice('sha256:'.length);
    const head = await rgw.request('HEAD', `${container}/shared/files/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`);
    assert.equal(head.status, 200, `blob ${digest} is at shared/files/docker/registry/v2/blobs/...`);
    const manifest = head.headers.get('x-object-manifest');
    if (!manifest) return [];
    return (await rgw.objects(container, manifest.slice(container.length + 1))).map((o) => o.bytes);
  }

  it('Wharf pushes and pulls a multi-layer image (a layer in 1 MiB segments); docker-registry serves it from the same container', async () => {
    const image = await makeTinyImage(`${tempDir('swift-img')}/layout`, 'v1', 3);
    assert.equal(image.blobs.length, 3, 'a config and two layers');
    const wharf = await registries.wharf(storage);
    await roundTrip(image, `${wharf.host}/swift/app:v1`);

    // The big layer is a manifest over segments of chunksize bytes, in Distribution's layout.
    const sizes = await Promise.all(image.blobs.map(segmentsOf));
    const big = sizes.find((s) => s.length > 2);
    assert.ok(big, `a layer is split into segments (${JSON.stringify(sizes)})`);
    assert.ok(big.slice(0, -1).every((n) => n === MiB), 'every segment but the last has chunksize bytes');
    // Blob GETs go to an RGW temp URL, which serves the bytes.
    const layer = image.blobs[sizes.indexOf(big)];
    const res = await fetch(`${wharf.url}/v2/swift/app/blobs/${layer}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    const location = res.headers.get('location') ?? '';
    assert.ok(location.startsWith(`${rgw.storageURL}/${container}/shared/files/docker/registry/v2/blobs/sha256/`), location);
    assert.match(location, /[?&]temp_url_sig=[0-9a-f]{40}&temp_url_expires=\d+$/);
    const bytes = Buffer.from(await (await fetch(location)).arrayBuffer());
    assert.equal(bytes.length, big.reduce((a, b) => a + b, 0));
    // skopeo's own pull above got that 307 and fetched the layer from RGW.
    const log = wharf.logTail(1000);
    const skopeoRedirected = log.split('\n').some((l) => l.includes(`GET /v2/swift/app/blobs/${layer} `) && / 307 /.test(l) && /skopeo\//.test(l));
    assert.ok(skopeoRedirected, `skopeo's blob GET was answered 307:\n${log}`);
    await registries.stop(wharf);

    const reference = await registries.reference(storage);
    await assertServes(image, `${reference.host}/swift/app:v1`);
    await registries.stop(reference);
  });

  it('docker-registry pushes to the container; Wharf serves the same image, digests unchanged', async () => {
    const image = await makeTinyImage(`${tempDir('swift-img')}/layout`, 'v2', 3);
    const reference = await registries.reference(storage);
    await pushImage(image, `${reference.host}/swift/other:v2`);
    await registries.stop(reference);
    // Distribution wrote its big layer as segments too.
    assert.ok((await Promise.all(image.blobs.map(segmentsOf))).some((s) => s.length > 2), 'docker-registry segmented a layer');

    const wharf = await registries.wharf(storage);
    await assertServes(image, `${wharf.host}/swift/other:v2`);
    const catalog = (await (await fetch(`${wharf.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, ['swift/app', 'swift/other']);
    await registries.stop(wharf);

    // And back: a tag Wharf pushes on top of Distribution's repository is served by Distribution.
    const wharf2 = await registries.wharf(storage);
    await skopeoCopy(`docker://${wharf2.host}/swift/other:v2`, `docker://${wharf2.host}/swift/other:again`);
    await registries.stop(wharf2);
    const reference2 = await registries.reference(storage);
    assert.equal(await inspectDigest(`${reference2.host}/swift/other:again`), image.digest);
    await registries.stop(reference2);
  });

  it('skopeo pushes and pulls an image with a 1 GiB layer; every byte comes back', async () => {
    const wharf = await registries.wharf(storage);
    await bigLayerRoundTrip(wharf.host, 'swift/big');
    await registries.stop(wharf);
  });
});
