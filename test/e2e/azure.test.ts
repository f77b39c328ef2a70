// Wharf on Azurite through the azure driver, with real clients: skopeo pushes and pulls an image
// with a 12 MB layer (several 4 MiB append blocks), blobs land under Distribution 2.8's names,
// blob GETs answer 307 to a read-only SAS URL that serves the bytes (skopeo follows it), and a
// chunked push moves between two Wharf instances on the same container.
// No cross-registry check is possible here: Debian's docker-registry (Distribution 2.8) is built
// without the azure driver, and upstream 2.8's driver only speaks to https://<account>.blob.<realm>.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import {
  finishUpload,
  inspectDigest,
  makeTinyImage,
  patchChunk,
  readOciImage,
  skopeoCopy,
  startUpload,
  startWharf,
  tempDir,
  type RegistryServer,
} from './harness.js';
import { blobNames, startAzurite, type Azurite } from '../storage/azurite.js';

describe('azure storage on Azurite: skopeo push and pull, SAS redirects', () => {
  let azurite: Azurite;
  let container: ContainerClient;
  let storage: string[];
  const servers: RegistryServer[] = [];

  before(async () => {
    azurite = await startAzurite();
    container = await azurite.createContainer('e2e');
    storage = [
      '  azure:',
      `    accountname: ${azurite.accountName}`,
      `    accountkey: ${azurite.accountKey}`,
      `    container: ${container.containerName}`,
      `    serviceurl: ${azurite.endpoint}`,
    ];
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await container?.delete();
  });

  async function start(extra: string[] = []): Promise<RegistryServer> {
    const server = await startWharf({ storage: [...storage, ...extra] });
    servers.push(server);
    return server;
  }

  it('skopeo pushes and pulls a 12 MB-layer image; a blob GET is a 307 to a SAS URL serving the bytes', async () => {
    const image = await makeTinyImage(`${tempDir('az-img')}/layout`, 'v1', 12);
    const wharf = await start();
    await skopeoCopy(image.ref, `docker://${wharf.host}/az/app:v1`);
    assert.equal(await inspectDigest(`${wharf.host}/az/app:v1`), image.digest);

    // Distribution 2.8's names: the path with its leading '/', no rootdirectory.
    const names = await blobNames(container, '/docker/registry/v2/');
    const layers = image.blobs.map((d) => d.slice('sha256:'.length));
    for (const hex of layers) assert.ok(names.includes(`/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`), `blob ${hex}`);
    assert.ok(names.includes('/docker/registry/v2/repositories/az/app/_manifests/tags/v1/current/link'));
    assert.ok(!names.some((n) => n.includes('/_uploads/')), 'no upload is left behind');

    // skopeo follows the 307s to Azurite and verifies every digest.
    const layout = `${tempDir('az-pull')}/layout`;
    await skopeoCopy(`docker://${wharf.host}/az/app:v1`, `oci:${layout}:t`, [], {});
    assert.deepEqual(readOciImage(layout, 't').blobs.sort(), [...image.blobs].sort());

    const big = await Promise.all(
      image.blobs.map(async (d) => ({ d, size: (await container.getBlobClient(`/docker/registry/v2/blobs/sha256/${d.slice(7, 9)}/${d.slice(7)}/data`).getProperties()).contentLength ?? 0 })),
    );
    const layer = big.sort((a, b) => b.size - a.size)[0];
    assert.ok(layer.size > 12_000_000, 'the 12 MB layer');
    const res = await fetch(`${wharf.url}/v2/az/app/blobs/${layer.d}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    const location = res.headers.get('location')!;
    assert.ok(location.startsWith(`${azurite.endpoint}/${container.containerName}//docker/registry/v2/blobs/sha256/`), location);
    assert.equal(new URL(location).searchParams.get('sp'), 'r');
    const direct = await fetch(location);
    assert.equal(direct.status, 200);
    assert.equal(`sha256:${createHash('sha256').update(Buffer.from(await direct.arrayBuffer())).digest('hex')}`, layer.d);
  });

  it('storage.redirect.disable serves blobs from Wharf; a chunked push moves between two instances', async () => {
    const a = await start(['  redirect:', '    disable: true']);
    const b = await start(['  redirect:', '    disable: true']);
    const chunks = [randomBytes(5 * 1024 * 1024 + 7), randomBytes(300_000), randomBytes(4 * 1024 * 1024)];
    const blob = Buffer.concat(chunks);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    let loc = await startUpload(a.url, 'az/chunked');
    loc = await patchChunk(loc, chunks[0], 0);
    // The next chunk goes to the other instance (same container): it resumes the append blob.
    loc = await patchChunk(loc.replace(a.url, b.url), chunks[1], chunks[0].length);
    const done = await finishUpload(loc.replace(b.url, a.url), digest, chunks[2]);
    assert.equal(done.status, 201);
    const res = await fetch(`${b.url}/v2/az/chunked/blobs/${digest}`, { redirect: 'manual' });
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(blob));
  });
});
