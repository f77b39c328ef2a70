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
import { startFakeGcs, type GcsFixture } from '../storage/gcs-fake.js';

/** The key as YAML lines under `credentials:` (the PEM as a block scalar), `indent` spaces deep. */
function credentialsYaml(key: Record<string, string>, indent: string): string[] {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(key)) {
    if (k === 'private_key') lines.push(`${indent}${k}: |`, ...v.trimEnd().split('\n').map((l) => `${indent}  ${l}`));
    else lines.push(`${indent}${k}: ${JSON.stringify(v)}`);
  }
  return lines;
}

describe('gcs storage on the fake Cloud Storage server: skopeo push and pull, signed redirects', () => {
  let gcs: GcsFixture;
  let bucket: string;
  const servers: RegistryServer[] = [];

  before(async () => {
    gcs = await startFakeGcs();
    bucket = gcs.createBucket('e2e');
    // Wharf's children inherit it: the driver (and Google's client library) use this endpoint.
    process.env.STORAGE_EMULATOR_HOST = gcs.fake.url;
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await gcs?.stop();
  });

  async function start(storage: string[]): Promise<RegistryServer> {
    const server = await startWharf({ storage });
    servers.push(server);
    return server;
  }

  it('skopeo pushes and pulls a 12 MB-layer image (keyfile); a blob GET is a 307 to a V4 signed URL serving the bytes', async () => {
    const image = await makeTinyImage(`${tempDir('gcs-img')}/layout`, 'v1', 12);
    const wharf = await start(['  gcs:', `    bucket: ${bucket}`, `    keyfile: ${gcs.writeKeyFile()}`, '    chunksize: 5242880']);
    await skopeoCopy(image.ref, `docker://${wharf.host}/gc/app:v1`);
    assert.equal(await inspectDigest(`${wharf.host}/gc/app:v1`), image.digest);

    // Distribution's names: the path without its leading '/', no rootdirectory.
    const names = gcs.fake.store.names(bucket);
    for (const d of image.blobs) {
      const hex = d.slice('sha256:'.length);
      assert.ok(names.includes(`docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`), `blob ${hex}`);
    }
    assert.ok(names.includes('docker/registry/v2/repositories/gc/app/_manifests/tags/v1/current/link'));
    assert.ok(!names.some((n) => n.includes('/_uploads/')), 'no upload is left behind');
    const sessions = [...gcs.fake.store.sessions.values()];
    assert.ok(sessions.some((s) => s.state === 'done' && s.persisted >= 10 * 1024 * 1024), 'the big layer went up through a resumable session in chunks');

    // skopeo follows the 307s to the fake and verifies every digest.
    const layout = `${tempDir('gcs-pull')}/layout`;
    await skopeoCopy(`docker://${wharf.host}/gc/app:v1`, `oci:${layout}:t`, [], {});
    assert.deepEqual(readOciImage(layout, 't').blobs.sort(), [...image.blobs].sort());

    const layer = image.blobs
      .map((d) => ({ d, size: gcs.fake.store.get(bucket, `docker/registry/v2/blobs/sha256/${d.slice(7, 9)}/${d.slice(7)}/data`)?.size ?? 0 }))
      .sort((a, b) => b.size - a.size)[0];
    assert.ok(layer.size > 12_000_000, 'the 12 MB layer');
    const res = await fetch(`${wharf.url}/v2/gc/app/blobs/${layer.d}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    const location = res.headers.get('location')!;
    assert.ok(location.startsWith(`${gcs.fake.url}/${bucket}/docker/registry/v2/blobs/sha256/`), location);
    assert.equal(new URL(location).searchParams.get('X-Goog-Algorithm'), 'GOOG4-RSA-SHA256');
    const direct = await fetch(location);
    assert.equal(direct.status, 200);
    assert.equal(`sha256:${createHash('sha256').update(Buffer.from(await direct.arrayBuffer())).digest('hex')}`, layer.d);
  });

  it('inline credentials and rootdirectory from the YAML; storage.redirect.disable serves blobs from Wharf; a chunked push moves between two instances', async () => {
    const storage = ['  gcs:', `    bucket: ${bucket}`, '    rootdirectory: /wharf/root', '    credentials:', ...credentialsYaml(gcs.account.key, '      '), '  redirect:', '    disable: true'];
    const a = await start(storage);
    const b = await start(storage);
    const image = await makeTinyImage(`${tempDir('gcs-img2')}/layout`, 'v2', 3);
    await skopeoCopy(image.ref, `docker://${a.host}/gc/other:v2`);
    const layout = `${tempDir('gcs-pull2')}/layout`;
    await skopeoCopy(`docker://${b.host}/gc/other:v2`, `oci:${layout}:t`, [], {});
    assert.deepEqual(readOciImage(layout, 't').blobs.sort(), [...image.blobs].sort());
    assert.ok(gcs.fake.store.names(bucket).includes('wharf/root/docker/registry/v2/repositories/gc/other/_manifests/tags/v2/current/link'));

    const chunks = [randomBytes(5 * 1024 * 1024 + 7), randomBytes(300_000), randomBytes(4 * 1024 * 1024)];
    const blob = Buffer.concat(chunks);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    let loc = await startUpload(a.url, 'gc/chunked');
    loc = await patchChunk(loc, chunks[0], 0);
    // The next chunk goes to the other instance (same bucket): it resumes the upload session.
    loc = await patchChunk(loc.replace(a.url, b.url), chunks[1], chunks[0].length);
    const done = await finishUpload(loc.replace(b.url, a.url), digest, chunks[2]);
    assert.equal(done.status, 201);
    const res = await fetch(`${b.url}/v2/gc/chunked/blobs/${digest}`, { redirect: 'manual' });
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(blob));
  });
});
