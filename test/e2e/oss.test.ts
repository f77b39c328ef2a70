// Wharf on the fake OSS server (test/storage/fake-oss: written from Aliyun's published OSS API
// reference, it checks every request's V1 signature; no OSS emulator exists to test against) through
// the oss driver, with a real client: skopeo pushes and pulls an image whose 12 MB layer spans
// several 5 MiB parts, objects land under Distribution's oss names, blob GETs answer 307 to a
// signed OSS URL that skopeo follows, and a chunked push moves between two Wharf instances.
// No cross-registry check: Debian's docker-registry (Distribution 2.8) is built without its oss driver.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
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
import { startFakeOss, type FakeOss } from '../storage/fake-oss/index.js';

describe('oss storage on the fake OSS server: skopeo push and pull, signed redirects', () => {
  let oss: FakeOss;
  let bucket: string;
  let storage: string[];
  const servers: RegistryServer[] = [];

  before(async () => {
    oss = await startFakeOss();
    bucket = oss.createBucket('e2e');
    storage = [
      '  oss:',
      `    accesskeyid: ${oss.accessKeyId}`,
      `    accesskeysecret: ${oss.accessKeySecret}`,
      `    region: ${oss.region}`,
      `    endpoint: ${oss.endpoint}`,
      `    bucket: ${bucket}`,
      '    secure: false',
      '    encrypt: true',
      '    chunksize: 5242880',
      '    rootdirectory: /shared/root',
    ];
  });

  after(async () => {
    for (const s of servers) await s.stop();
    if (oss) {
      const leaked = oss.openUploads(bucket);
      const refused = oss.log.filter((r) => r.status === 403);
      await oss.stop();
      assert.deepEqual(leaked, [], 'no multipart upload is left open');
      assert.deepEqual(refused, [], 'every request Wharf and skopeo made was signed correctly');
    }
  });

  async function start(extra: string[] = []): Promise<RegistryServer> {
    const server = await startWharf({ storage: [...storage, ...extra] });
    servers.push(server);
    return server;
  }

  it('skopeo pushes and pulls a 12 MB-layer image; a blob GET is a 307 to a signed URL serving the bytes', async () => {
    const image = await makeTinyImage(`${tempDir('oss-img')}/layout`, 'v1', 12);
    const wharf = await start();
    await skopeoCopy(image.ref, `docker://${wharf.host}/oss/app:v1`);
    assert.equal(await inspectDigest(`${wharf.host}/oss/app:v1`), image.digest);

    // Distribution's oss names under the rootdirectory; every blob encrypted as `encrypt` asks.
    const keys = oss.keys(bucket, 'shared/root/docker/registry/v2/');
    for (const digest of image.blobs) {
      const hex = digest.slice('sha256:'.length);
      const key = `shared/root/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
      assert.ok(keys.includes(key), `blob ${hex}`);
      assert.equal(oss.state.store.get(bucket, key)?.encryption?.algorithm, 'AES256');
    }
    assert.ok(keys.includes('shared/root/docker/registry/v2/repositories/oss/app/_manifests/tags/v1/current/link'));
    assert.ok(!keys.some((k) => k.includes('/_uploads/')), 'no upload is left behind');
    const sizes = image.blobs.map((d) => ({ d, size: oss.state.store.get(bucket, `shared/root/docker/registry/v2/blobs/sha256/${d.slice(7, 9)}/${d.slice(7)}/data`)!.size }));
    const layer = sizes.sort((a, b) => b.size - a.size)[0]!;
    assert.ok(layer.size > 12_000_000, 'the 12 MB layer, above chunksize');
    assert.ok(oss.log.some((r) => r.operation === 'UploadPart'), 'the large layer went up in parts');

    // skopeo follows the 307s to the fake OSS and verifies every digest.
    const before = oss.log.filter((r) => r.operation === 'GetObject' && r.key.includes('/blobs/')).length;
    const layout = `${tempDir('oss-pull')}/layout`;
    await skopeoCopy(`docker://${wharf.host}/oss/app:v1`, `oci:${layout}:t`);
    assert.deepEqual(readOciImage(layout, 't').blobs.sort(), [...image.blobs].sort());
    assert.ok(oss.log.filter((r) => r.operation === 'GetObject' && r.key.includes('/blobs/')).length > before, 'blobs came from OSS');

    const res = await fetch(`${wharf.url}/v2/oss/app/blobs/${layer.d}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    const location = res.headers.get('location')!;
    assert.ok(location.startsWith(`http://${oss.endpoint}/shared/root/docker/registry/v2/blobs/sha256/`), location);
    const query = new URL(location).searchParams;
    assert.equal(query.get('OSSAccessKeyId'), oss.accessKeyId);
    assert.ok(Number(query.get('Expires')) > Date.now() / 1000 + 19 * 60, 'valid about 20 minutes');
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
    let loc = await startUpload(a.url, 'oss/chunked');
    loc = await patchChunk(loc, chunks[0]!, 0);
    // The next chunk goes to the other instance (same bucket): it resumes the multipart upload.
    loc = await patchChunk(loc.replace(a.url, b.url), chunks[1]!, chunks[0]!.length);
    const done = await finishUpload(loc.replace(b.url, a.url), digest, chunks[2]);
    assert.equal(done.status, 201);
    const res = await fetch(`${b.url}/v2/oss/chunked/blobs/${digest}`, { redirect: 'manual' });
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(blob));
    // And a third instance, started afresh, pulls the first image from the same bucket.
    const c = await start();
    assert.match(await inspectDigest(`${c.host}/oss/app:v1`), /^sha256:[0-9a-f]{64}$/);
  });
});
