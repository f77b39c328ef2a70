// Wharf on Ceph RGW's Swift API through the swift driver, with real clients, and Distribution 2.8
// (Debian's docker-registry, its own swift driver) on the same container and prefix: each serves
// what the other pushed, with the same digests. A 3 MiB layer with chunksize 1 MiB makes both
// write segmented dynamic large objects, and Wharf's blob GETs are redirected to RGW temp URLs
// that skopeo follows.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inspectDigest, makeTinyImage, readOciImage, skopeoCopy, startReference, startWharf, tempDir, type RegistryServer } from './harness.js';
import { startRgwSwift, type RgwSwift } from '../storage/rgw-swift.js';

const MiB = 1024 * 1024;

describe('swift storage on Ceph RGW: Wharf and Distribution 2.8 share a container', () => {
  let rgw: RgwSwift;
  let container: string;
  let storage: string[];
  const servers: RegistryServer[] = [];

  before(async () => {
    rgw = await startRgwSwift();
    container = rgw.containerName('e2e');
    storage = [
      '  swift:',
      `    authurl: ${rgw.authURL}`,
      `    username: "${rgw.user}"`,
      `    password: "${rgw.key}"`,
      `    container: ${container}`,
      `    chunksize: ${MiB}`,
      '    prefix: /shared',
    ];
  });

  after(async () => {
    for (const s of servers) await s.stop();
    if (container) await rgw.removeContainer(container);
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
    const layout = `${tempDir('swift-pull')}/layout`;
    await skopeoCopy(`docker://${ref}`, `oci:${layout}:t`);
    return readOciImage(layout, 't').blobs;
  }

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
    const wharf = await start('wharf');
    await skopeoCopy(image.ref, `docker://${wharf.host}/swift/app:v1`);
    assert.equal(await inspectDigest(`${wharf.host}/swift/app:v1`), image.digest);
    assert.deepEqual((await pull(`${wharf.host}/swift/app:v1`)).sort(), [...image.blobs].sort());

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
    await stop(wharf);

    const reference = await start('reference');
    assert.equal(await inspectDigest(`${reference.host}/swift/app:v1`), image.digest);
    assert.deepEqual((await pull(`${reference.host}/swift/app:v1`)).sort(), [...image.blobs].sort());
    await stop(reference);
  });

  it('docker-registry pushes to the container; Wharf serves the same image, digests unchanged', async () => {
    const image = await makeTinyImage(`${tempDir('swift-img')}/layout`, 'v2', 3);
    const reference = await start('reference');
    await skopeoCopy(image.ref, `docker://${reference.host}/swift/other:v2`);
    assert.equal(await inspectDigest(`${reference.host}/swift/other:v2`), image.digest);
    await stop(reference);
    // Distribution wrote its big layer as segments too.
    assert.ok((await Promise.all(image.blobs.map(segmentsOf))).some((s) => s.length > 2), 'docker-registry segmented a layer');

    const wharf = await start('wharf');
    assert.equal(await inspectDigest(`${wharf.host}/swift/other:v2`), image.digest);
    assert.deepEqual((await pull(`${wharf.host}/swift/other:v2`)).sort(), [...image.blobs].sort());
    const catalog = (await (await fetch(`${wharf.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, ['swift/app', 'swift/other']);
    await stop(wharf);

    // And back: a tag Wharf pushes on top of Distribution's repository is served by Distribution.
    const wharf2 = await start('wharf');
    await skopeoCopy(`docker://${wharf2.host}/swift/other:v2`, `docker://${wharf2.host}/swift/other:again`);
    await stop(wharf2);
    const reference2 = await start('reference');
    assert.equal(await inspectDigest(`${reference2.host}/swift/other:again`), image.digest);
    await stop(reference2);
  });
});
