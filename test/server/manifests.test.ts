// end-3 (GET/HEAD manifest), end-7 (PUT), end-9 (DELETE): formats, exact bytes, negotiation, errors.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ACCEPT_ALL,
  assertAlive,
  assertError,
  DOCKER_CONFIG,
  DOCKER_LAYER,
  DOCKER_LIST,
  DOCKER_MANIFEST,
  hexOf,
  listOnlyFiles,
  OCI_CONFIG,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
  pushBlob,
  pushImage,
  putManifest,
  randomDigest,
  request,
  sha256,
  startServer,
  storageRoot,
  type Res,
  type TestServer,
} from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(async () => {
  await s.close();
});

const MAX = 4 * 1024 * 1024;

async function get(reference: string, name: string, accept: string | null = ACCEPT_ALL, method = 'GET'): Promise<Res> {
  return request(s, method, `/v2/${name}/manifests/${reference}`, accept === null ? {} : { headers: { Accept: accept } });
}

/** Assert a manifest response serves exactly `content` as `mediaType`. */
function assertServed(res: Res, content: Buffer, mediaType: string, head = false): void {
  assert.equal(res.status, 200, res.text);
  const digest = sha256(content);
  assert.equal(res.headers['content-type'], mediaType);
  assert.equal(res.headers['docker-content-digest'], digest);
  assert.equal(res.headers.etag, `"${digest}"`);
  assert.equal(res.headers['content-length'], String(content.length));
  if (head) assert.equal(res.body.length, 0);
  else assert.ok(res.body.equals(content), 'the exact bytes pushed');
}

/** A config and a layer in `name`; returns their descriptors. */
async function blobsFor(name: string, docker = false, seed = name) {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = Buffer.from(`layer of ${seed}`);
  return {
    config: { mediaType: docker ? DOCKER_CONFIG : OCI_CONFIG, digest: await pushBlob(s, name, config), size: config.length },
    layer: { mediaType: docker ? DOCKER_LAYER : OCI_LAYER, digest: await pushBlob(s, name, layer), size: layer.length },
  };
}

describe('PUT/GET/HEAD manifests of every format (end-3, end-7)', () => {
  it('OCI image manifest: unusual whitespace and key order round-trip byte for byte, by tag and by digest', async () => {
    const { config, layer } = await blobsFor('fmt/oci');
    // Keys out of the usual order, tabs, CRLF, a trailing newline, escaped unicode.
    const content = Buffer.from(
      `{\r\n\t"layers" : [ {"size":${layer.size},"digest":"${layer.digest}","mediaType":"${layer.mediaType}"} ],\r\n` +
        `\t"config":{"size":${config.size}, "mediaType":"${config.mediaType}",  "digest":"${config.digest}"},\r\n` +
        `  "annotations": {"note":"caf\\u00e9 ☕"},\n  "mediaType":"${OCI_MANIFEST}", "schemaVersion":2   }\n\n`,
    );
    const digest = sha256(content);
    const put = await putManifest(s, 'fmt/oci', 'v1', content, OCI_MANIFEST);
    assert.equal(put.status, 201, put.text);
    assert.equal(put.headers['docker-content-digest'], digest);
    assert.match(String(put.headers.location), new RegExp(`^http://127\\.0\\.0\\.1:\\d+/v2/fmt/oci/manifests/${digest}$`));
    assert.equal(put.headers['content-length'], '0');
    assertServed(await get('v1', 'fmt/oci'), content, OCI_MANIFEST);
    assertServed(await get(digest, 'fmt/oci'), content, OCI_MANIFEST);
    assertServed(await get('v1', 'fmt/oci', ACCEPT_ALL, 'HEAD'), content, OCI_MANIFEST, true);
    assertServed(await get(digest, 'fmt/oci', null, 'HEAD'), content, OCI_MANIFEST, true);
    // The Location of the PUT answers the same bytes.
    assertServed(await request(s, 'GET', new URL(String(put.headers.location)).pathname), content, OCI_MANIFEST);
  });

  it('If-None-Match with the ETag → 304 (by tag and by digest), another ETag → 200', async () => {
    const img = await pushImage(s, 'fmt/etag', 'v1');
    for (const ref of ['v1', img.digest]) {
      const res = await request(s, 'GET', `/v2/fmt/etag/manifests/${ref}`, { headers: { Accept: ACCEPT_ALL, 'If-None-Match': `"${img.digest}"` } });
      assert.equal(res.status, 304, ref);
      assert.equal(res.body.length, 0);
      assert.equal(res.headers['docker-content-digest'], img.digest);
      assert.equal(res.headers.etag, `"${img.digest}"`);
    }
    const other = await request(s, 'GET', `/v2/fmt/etag/manifests/v1`, { headers: { Accept: ACCEPT_ALL, 'If-None-Match': `"${randomDigest()}"` } });
    assert.equal(other.status, 200);
    // As Distribution: the digest unquoted matches too, and each If-None-Match header counts.
    const unquoted = await request(s, 'GET', `/v2/fmt/etag/manifests/v1`, { headers: { Accept: ACCEPT_ALL, 'If-None-Match': img.digest } });
    assert.equal(unquoted.status, 304);
    const several = await request(s, 'HEAD', `/v2/fmt/etag/manifests/v1`, { headers: { Accept: ACCEPT_ALL, 'If-None-Match': [`"${randomDigest()}"`, `"${img.digest}"`] } });
    assert.equal(several.status, 304);
  });

  it('Docker schema 2 manifest', async () => {
    const img = await pushImage(s, 'fmt/docker', 'latest', { mediaType: DOCKER_MANIFEST });
    assertServed(await get('latest', 'fmt/docker'), img.content, DOCKER_MANIFEST);
    // Judgement call: Docker schema 2 is served by tag whatever Accept says. Distribution 2.8 tries to
    // rewrite it to schema 1 for such clients and, with schema 1 disabled, answers 400 MANIFEST_INVALID.
    assertServed(await get('latest', 'fmt/docker', null), img.content, DOCKER_MANIFEST);
    assertServed(await get(img.digest, 'fmt/docker', null), img.content, DOCKER_MANIFEST);
  });

  it('OCI index of two images (by tag with Accept, always by digest)', async () => {
    const a = await pushImage(s, 'fmt/index', 'digest');
    const b = await pushImage(s, 'fmt/index', 'digest', { platform: 'arm64' });
    const content = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { mediaType: OCI_MANIFEST, digest: a.digest, size: a.size, platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: OCI_MANIFEST, digest: b.digest, size: b.size, platform: { os: 'linux', architecture: 'arm64' } },
        ],
        annotations: { 'org.example': 'x' },
      }),
    );
    const put = await putManifest(s, 'fmt/index', 'multi', content, OCI_INDEX);
    assert.equal(put.status, 201, put.text);
    assertServed(await get('multi', 'fmt/index'), content, OCI_INDEX);
    assertServed(await get(sha256(content), 'fmt/index', null), content, OCI_INDEX);
    assertServed(await get('multi', 'fmt/index', OCI_INDEX, 'HEAD'), content, OCI_INDEX, true);
  });

  it('Docker manifest list', async () => {
    const a = await pushImage(s, 'fmt/list', 'digest', { mediaType: DOCKER_MANIFEST });
    const content = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: DOCKER_LIST,
        manifests: [{ mediaType: DOCKER_MANIFEST, digest: a.digest, size: a.size, platform: { os: 'linux', architecture: 'amd64' } }],
      }),
    );
    assert.equal((await putManifest(s, 'fmt/list', 'multi', content, DOCKER_LIST)).status, 201);
    assertServed(await get('multi', 'fmt/list'), content, DOCKER_LIST);
    assertServed(await get(sha256(content), 'fmt/list', null), content, DOCKER_LIST);
  });

  it('an index may be empty', async () => {
    const content = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
    assert.equal((await putManifest(s, 'fmt/empty-index', 'e', content, OCI_INDEX)).status, 201);
    assertServed(await get('e', 'fmt/empty-index'), content, OCI_INDEX);
  });

  it('artifact with artifactType and the empty config descriptor', async () => {
    const emptyDigest = await pushBlob(s, 'fmt/artifact', '{}');
    assert.equal(emptyDigest, 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
    const payload = await pushBlob(s, 'fmt/artifact', 'an SBOM');
    const content = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.example.sbom.v1',
        config: { mediaType: OCI_EMPTY, digest: emptyDigest, size: 2, data: 'e30=' },
        layers: [{ mediaType: 'application/vnd.example.sbom.v1+json', digest: payload, size: 7 }],
      }),
    );
    const put = await putManifest(s, 'fmt/artifact', 'sbom', content, OCI_MANIFEST);
    assert.equal(put.status, 201, put.text);
    assertServed(await get('sbom', 'fmt/artifact'), content, OCI_MANIFEST);
  });

  it('artifact with a custom config.mediaType and custom layer types (and no layers at all)', async () => {
    const cfg = await pushBlob(s, 'fmt/artifact2', '{"kind":"helm"}');
    const chart = await pushBlob(s, 'fmt/artifact2', 'chart bytes');
    const withLayers = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        config: { mediaType: 'application/vnd.cncf.helm.config.v1+json', digest: cfg, size: 15 },
        layers: [{ mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', digest: chart, size: 11 }],
      }),
    );
    assert.equal((await putManifest(s, 'fmt/artifact2', 'chart', withLayers, OCI_MANIFEST)).status, 201);
    assertServed(await get('chart', 'fmt/artifact2'), withLayers, OCI_MANIFEST);
    const noLayers = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.example.thing', digest: cfg, size: 15 }, layers: [] }),
    );
    assert.equal((await putManifest(s, 'fmt/artifact2', 'nolayers', noLayers, OCI_MANIFEST)).status, 201);
  });

  it('PUT by digest: 201, no tag created; sha512 references are honoured', async () => {
    const { config, layer } = await blobsFor('fmt/bydigest');
    const content = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] }));
    const digest = sha256(content);
    const put = await putManifest(s, 'fmt/bydigest', digest, content, OCI_MANIFEST);
    assert.equal(put.status, 201, put.text);
    assert.equal(put.headers['docker-content-digest'], digest);
    assertServed(await get(digest, 'fmt/bydigest'), content, OCI_MANIFEST);
    const tags = await request(s, 'GET', '/v2/fmt/bydigest/tags/list');
    assert.deepEqual(tags.status === 200 ? tags.json().tags : [], []);

    const c512 = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
    const d512 = `sha512:${createHash('sha512').update(c512).digest('hex')}`;
    const p512 = await putManifest(s, 'fmt/bydigest', d512, c512, OCI_MANIFEST);
    assert.equal(p512.status, 201, p512.text);
    assert.equal(p512.headers['docker-content-digest'], d512);
    const g512 = await get(d512, 'fmt/bydigest');
    assert.equal(g512.status, 200);
    assert.ok(g512.body.equals(c512));
  });

  it('without a Content-Type the manifest is stored under its own mediaType', async () => {
    const { config, layer } = await blobsFor('fmt/notype', true);
    const content = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config, layers: [layer] }));
    const put = await request(s, 'PUT', '/v2/fmt/notype/manifests/t', { body: content });
    assert.equal(put.status, 201, put.text);
    assertServed(await get('t', 'fmt/notype'), content, DOCKER_MANIFEST);
  });

  it('re-tagging moves the tag; pushing the same manifest again is idempotent', async () => {
    const a = await pushImage(s, 'fmt/retag', 'latest');
    const again = await putManifest(s, 'fmt/retag', 'latest', a.content, OCI_MANIFEST);
    assert.equal(again.status, 201);
    assert.equal(again.headers['docker-content-digest'], a.digest);
    const b = await pushImage(s, 'fmt/retag', 'latest');
    assertServed(await get('latest', 'fmt/retag'), b.content, OCI_MANIFEST);
    assertServed(await get(a.digest, 'fmt/retag'), a.content, OCI_MANIFEST);
  });
});

describe('manifest PUT errors', () => {
  const name = 'bad/manifest';
  let config: { mediaType: string; digest: string; size: number };
  let layer: { mediaType: string; digest: string; size: number };
  let before0: string[];
  before(async () => {
    ({ config, layer } = await blobsFor(name));
    await pushImage(s, name, 'existing');
  });

  async function expectRefused(reference: string, body: Buffer | string, contentType: string | undefined, status: number, code: string) {
    before0 = listOnlyFiles(s.dir!);
    const res = await request(s, 'PUT', `/v2/${name}/manifests/${reference}`, {
      body,
      headers: contentType ? { 'Content-Type': contentType } : {},
    });
    assertError(res, status, code);
    assert.deepEqual(listOnlyFiles(s.dir!), before0, 'a refused manifest leaves nothing on disk');
    await assertAlive(s);
  }

  it('a digest reference that does not match the content → 400 DIGEST_INVALID', async () => {
    const content = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] });
    await expectRefused(randomDigest(), content, OCI_MANIFEST, 400, 'DIGEST_INVALID');
    await expectRefused(`sha512:${'a'.repeat(128)}`, content, OCI_MANIFEST, 400, 'DIGEST_INVALID');
  });

  it('a malformed digest reference → 400 DIGEST_INVALID', async () => {
    const content = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] });
    for (const ref of ['sha256:abc', `sha256:${'G'.repeat(64)}`, `md5:${'a'.repeat(32)}`]) {
      await expectRefused(ref, content, OCI_MANIFEST, 400, 'DIGEST_INVALID');
    }
  });

  it('invalid JSON, non-objects, empty body → 400 MANIFEST_INVALID', async () => {
    for (const body of ['', '{', 'not json', '[]', '"string"', 'null', '42', '{"schemaVersion":2,}']) {
      await expectRefused('t', body, OCI_MANIFEST, 400, 'MANIFEST_INVALID');
    }
  });

  it('wrong or missing schemaVersion → 400 MANIFEST_INVALID (schema 1 too)', async () => {
    for (const v of [1, 3, '2', null, undefined]) {
      await expectRefused('t', JSON.stringify({ schemaVersion: v, mediaType: OCI_MANIFEST, config, layers: [layer] }), OCI_MANIFEST, 400, 'MANIFEST_INVALID');
    }
    await expectRefused('t', JSON.stringify({ schemaVersion: 1, name, tag: 't', fsLayers: [] }), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 400, 'MANIFEST_INVALID');
  });

  it('missing or malformed config / layers → 400 MANIFEST_INVALID', async () => {
    const docs: unknown[] = [
      { schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [layer] },
      { schemaVersion: 2, mediaType: OCI_MANIFEST, config: 'x', layers: [layer] },
      { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...config, digest: 'sha256:nothex' }, layers: [layer] },
      { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...config, size: -1 }, layers: [layer] },
      { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { digest: config.digest, size: config.size }, layers: [layer] },
      { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: {} },
      { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [{ ...layer, size: '7' }] },
      { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer], manifests: [] },
      { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config, layers: 'nope' },
    ];
    for (const doc of docs) {
      const ct = (doc as { mediaType: string }).mediaType;
      await expectRefused('t', JSON.stringify(doc), ct, 400, 'MANIFEST_INVALID');
    }
  });

  it('an index without manifests, or with a malformed child descriptor → 400 MANIFEST_INVALID', async () => {
    await expectRefused('t', JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX }), OCI_INDEX, 400, 'MANIFEST_INVALID');
    await expectRefused('t', JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ digest: 'x' }] }), OCI_INDEX, 400, 'MANIFEST_INVALID');
  });

  it('mediaType in the body differing from Content-Type → 400 MANIFEST_INVALID', async () => {
    const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] };
    await expectRefused('t', JSON.stringify(doc), DOCKER_MANIFEST, 400, 'MANIFEST_INVALID');
    await expectRefused('t', JSON.stringify(doc), OCI_INDEX, 400, 'MANIFEST_INVALID');
    await expectRefused('t', JSON.stringify({ ...doc, mediaType: DOCKER_MANIFEST }), OCI_MANIFEST, 400, 'MANIFEST_INVALID');
  });

  it('Docker schema 2 without mediaType, or an unknown media type → 400 MANIFEST_INVALID', async () => {
    await expectRefused('t', JSON.stringify({ schemaVersion: 2, config, layers: [layer] }), DOCKER_MANIFEST, 400, 'MANIFEST_INVALID');
    await expectRefused('t', JSON.stringify({ schemaVersion: 2, mediaType: 'application/x-nope', config, layers: [layer] }), 'application/x-nope', 400, 'MANIFEST_INVALID');
  });

  it('a foreign layer URL with no validation.manifests.urls.allow → 400 MANIFEST_INVALID', async () => {
    const foreign = { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: randomDigest(), size: 10, urls: ['https://example.com/layer'] };
    await expectRefused('t', JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config, layers: [foreign] }), DOCKER_MANIFEST, 400, 'MANIFEST_INVALID');
  });

  it('unknown config or layer blobs → 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const missing = { mediaType: OCI_LAYER, digest: randomDigest(), size: 5 };
    await expectRefused('t', JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [missing] }), OCI_MANIFEST, 400, 'MANIFEST_BLOB_UNKNOWN');
    await expectRefused('t', JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...config, digest: randomDigest() }, layers: [layer] }), OCI_MANIFEST, 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('blobs that exist only in another repository → 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const elsewhere = await blobsFor('bad/other-repo');
    await expectRefused(
      't',
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: elsewhere.config, layers: [elsewhere.layer] }),
      OCI_MANIFEST,
      400,
      'MANIFEST_BLOB_UNKNOWN',
    );
  });

  it('an index naming unknown child manifests → 400 MANIFEST_BLOB_UNKNOWN (also children of another repo)', async () => {
    const other = await pushImage(s, 'bad/other-repo', 'x');
    for (const child of [randomDigest(), other.digest]) {
      const doc = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: child, size: 100 }] };
      await expectRefused('t', JSON.stringify(doc), OCI_INDEX, 400, 'MANIFEST_BLOB_UNKNOWN');
    }
    const list = { schemaVersion: 2, mediaType: DOCKER_LIST, manifests: [{ mediaType: DOCKER_MANIFEST, digest: randomDigest(), size: 100 }] };
    await expectRefused('t', JSON.stringify(list), DOCKER_LIST, 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('invalid tags → 400 TAG_INVALID', async () => {
    const content = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] });
    for (const tag of ['-dash', '.dot', 'a'.repeat(129), 'sp%20ace', 'sl%2Fash', 'ta%00g', 'ünï']) {
      await expectRefused(encodeURI(tag).replace(/%25/g, '%'), content, OCI_MANIFEST, 400, 'TAG_INVALID');
    }
    // 128 characters is the limit.
    const ok = await putManifest(s, name, 'a'.repeat(128), content, OCI_MANIFEST);
    assert.equal(ok.status, 201);
  });

  it('a manifest over 4 MiB → 413 (declared length), nothing stored', async () => {
    const before = listOnlyFiles(s.dir!);
    const answer = await rawHeadersOnly(
      s.port,
      `PUT /v2/${name}/manifests/huge HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${OCI_MANIFEST}\r\nContent-Length: ${MAX + 1}\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /MANIFEST_INVALID/);
    assert.match(answer, /Docker-Distribution-Api-Version: registry\/2\.0/i);
    assert.deepEqual(listOnlyFiles(s.dir!), before);
    await assertAlive(s);
  });

  it('a manifest over 4 MiB sent chunked (no length) → 413, nothing stored', async () => {
    const before = listOnlyFiles(s.dir!);
    const big = Buffer.alloc(MAX + 1, 0x20);
    const res = await request(s, 'PUT', `/v2/${name}/manifests/huge`, {
      headers: { 'Content-Type': OCI_MANIFEST },
      chunks: [big.subarray(0, MAX / 2), big.subarray(MAX / 2)],
    });
    assertError(res, 413, 'MANIFEST_INVALID');
    assert.deepEqual(listOnlyFiles(s.dir!), before);
    await assertAlive(s);
  });

  it('exactly 4 MiB of valid manifest is accepted', async () => {
    const doc = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] });
    const content = Buffer.from(doc + ' '.repeat(MAX - Buffer.byteLength(doc)));
    assert.equal(content.length, MAX);
    const res = await putManifest(s, name, 'fourmib', content, OCI_MANIFEST);
    assert.equal(res.status, 201, res.text);
  });
});

describe('GET manifest errors', () => {
  it('unknown tag, unknown digest, unknown repository → 404 MANIFEST_UNKNOWN (or NAME_UNKNOWN)', async () => {
    await pushImage(s, 'get/known', 'v1');
    assertError(await get('nope', 'get/known'), 404, 'MANIFEST_UNKNOWN');
    assertError(await get(randomDigest(), 'get/known'), 404, 'MANIFEST_UNKNOWN');
    const unknownRepo = await get('v1', 'get/never');
    assert.equal(unknownRepo.status, 404);
    assert.ok(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN'].includes(errorCodeOf(unknownRepo)));
    const head = await get('nope', 'get/known', ACCEPT_ALL, 'HEAD');
    assert.equal(head.status, 404);
    assert.equal(head.body.length, 0);
  });

  it('a manifest of another repository is not visible by digest', async () => {
    const img = await pushImage(s, 'get/a', 'v1');
    assertError(await get(img.digest, 'get/b'), 404, 'MANIFEST_UNKNOWN');
  });

  it('a blob digest is not a manifest', async () => {
    const img = await pushImage(s, 'get/c', 'v1');
    assertError(await get(img.layerDigest, 'get/c'), 404, 'MANIFEST_UNKNOWN');
  });

  it('invalid references → 400 (TAG_INVALID / DIGEST_INVALID)', async () => {
    assertError(await get('-bad', 'get/c'), 400, 'TAG_INVALID');
    assertError(await get('a'.repeat(129), 'get/c'), 400, 'TAG_INVALID');
    assertError(await get('sha256:short', 'get/c'), 400, 'DIGEST_INVALID');
    await assertAlive(s);
  });
});

describe('Accept negotiation by tag (Distribution 2.8)', () => {
  let oci: Awaited<ReturnType<typeof pushImage>>;
  let amd64: Awaited<ReturnType<typeof pushImage>>;
  let list: Buffer;
  let index: Buffer;
  before(async () => {
    oci = await pushImage(s, 'neg/r', 'oci');
    amd64 = await pushImage(s, 'neg/r', 'digest', { mediaType: DOCKER_MANIFEST, platform: 'amd64' });
    const arm = await pushImage(s, 'neg/r', 'digest', { mediaType: DOCKER_MANIFEST, platform: 'arm64' });
    list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: DOCKER_LIST,
        manifests: [
          { mediaType: DOCKER_MANIFEST, digest: arm.digest, size: arm.size, platform: { os: 'linux', architecture: 'arm64' } },
          { mediaType: DOCKER_MANIFEST, digest: amd64.digest, size: amd64.size, platform: { os: 'linux', architecture: 'amd64' } },
        ],
      }),
    );
    assert.equal((await putManifest(s, 'neg/r', 'list', list, DOCKER_LIST)).status, 201);
    const armOnly = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: DOCKER_LIST,
        manifests: [{ mediaType: DOCKER_MANIFEST, digest: arm.digest, size: arm.size, platform: { os: 'linux', architecture: 'arm64' } }],
      }),
    );
    assert.equal((await putManifest(s, 'neg/r', 'armonly', armOnly, DOCKER_LIST)).status, 201);
    index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: oci.digest, size: oci.size }] }));
    assert.equal((await putManifest(s, 'neg/r', 'index', index, OCI_INDEX)).status, 201);
  });

  it('an OCI manifest by tag without an OCI Accept → 404 MANIFEST_UNKNOWN', async () => {
    assertError(await get('oci', 'neg/r', null), 404, 'MANIFEST_UNKNOWN');
    assertError(await get('oci', 'neg/r', DOCKER_MANIFEST), 404, 'MANIFEST_UNKNOWN');
    assertServed(await get('oci', 'neg/r', OCI_MANIFEST), oci.content, OCI_MANIFEST);
    // Parameters, case and several headers are understood.
    assertServed(await get('oci', 'neg/r', `${DOCKER_MANIFEST}, ${OCI_MANIFEST.toUpperCase()};q=0.5`), oci.content, OCI_MANIFEST);
    const two = await request(s, 'GET', '/v2/neg/r/manifests/oci', { headers: { Accept: [DOCKER_MANIFEST, OCI_MANIFEST] } });
    assertServed(two, oci.content, OCI_MANIFEST);
  });

  it('by digest the stored manifest is always served, whatever Accept says', async () => {
    assertServed(await get(oci.digest, 'neg/r', null), oci.content, OCI_MANIFEST);
    assertServed(await get(oci.digest, 'neg/r', DOCKER_MANIFEST), oci.content, OCI_MANIFEST);
    assertServed(await get(sha256(list), 'neg/r', DOCKER_MANIFEST), list, DOCKER_LIST);
    assertServed(await get(sha256(index), 'neg/r', null), index, OCI_INDEX);
  });

  it('an OCI index by tag without the index Accept → 404 MANIFEST_UNKNOWN', async () => {
    assertError(await get('index', 'neg/r', OCI_MANIFEST), 404, 'MANIFEST_UNKNOWN');
    assertServed(await get('index', 'neg/r', OCI_INDEX), index, OCI_INDEX);
  });

  it('a Docker manifest list by tag without the list Accept → its linux/amd64 image', async () => {
    for (const accept of [null, DOCKER_MANIFEST]) {
      const res = await get('list', 'neg/r', accept);
      assertServed(res, amd64.content, DOCKER_MANIFEST);
    }
    assertServed(await get('list', 'neg/r', DOCKER_LIST), list, DOCKER_LIST);
    const head = await get('list', 'neg/r', null, 'HEAD');
    assertServed(head, amd64.content, DOCKER_MANIFEST, true);
  });

  it('a manifest list with no linux/amd64 image → 404 MANIFEST_UNKNOWN for a client without list Accept', async () => {
    assertError(await get('armonly', 'neg/r', DOCKER_MANIFEST), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await get('armonly', 'neg/r', DOCKER_LIST)).status, 200);
  });
});

describe('DELETE manifest (end-9)', () => {
  it('by digest: 202; the tags pointing at it are gone; then 404', async () => {
    const img = await pushImage(s, 'del/m', 'a');
    assert.equal((await putManifest(s, 'del/m', 'b', img.content, OCI_MANIFEST)).status, 201);
    const keep = await pushImage(s, 'del/m', 'keep');
    const res = await request(s, 'DELETE', `/v2/del/m/manifests/${img.digest}`);
    assert.equal(res.status, 202, res.text);
    assertError(await get(img.digest, 'del/m'), 404, 'MANIFEST_UNKNOWN');
    assertError(await get('a', 'del/m'), 404, 'MANIFEST_UNKNOWN');
    assertError(await get('b', 'del/m'), 404, 'MANIFEST_UNKNOWN');
    assert.deepEqual((await request(s, 'GET', '/v2/del/m/tags/list')).json().tags, ['keep']);
    assertServed(await get('keep', 'del/m'), keep.content, OCI_MANIFEST);
    assertError(await request(s, 'DELETE', `/v2/del/m/manifests/${img.digest}`), 404, 'MANIFEST_UNKNOWN');
    // The layers stay linked (deleting a manifest is not garbage collection).
    assert.equal((await request(s, 'HEAD', `/v2/del/m/blobs/${img.layerDigest}`)).status, 200);
    // And it can be pushed again.
    assert.equal((await putManifest(s, 'del/m', 'a', img.content, OCI_MANIFEST)).status, 201);
    assertServed(await get('a', 'del/m'), img.content, OCI_MANIFEST);
  });

  it('by tag (OCI 1.1): 202; the tag is gone, the manifest stays by digest and under other tags', async () => {
    const img = await pushImage(s, 'del/t', 'one');
    await putManifest(s, 'del/t', 'two', img.content, OCI_MANIFEST);
    const res = await request(s, 'DELETE', '/v2/del/t/manifests/one');
    assert.equal(res.status, 202, res.text);
    assertError(await get('one', 'del/t'), 404, 'MANIFEST_UNKNOWN');
    assertServed(await get(img.digest, 'del/t'), img.content, OCI_MANIFEST);
    assertServed(await get('two', 'del/t'), img.content, OCI_MANIFEST);
    assert.deepEqual((await request(s, 'GET', '/v2/del/t/tags/list')).json().tags, ['two']);
    assertError(await request(s, 'DELETE', '/v2/del/t/manifests/one'), 404, 'MANIFEST_UNKNOWN');
  });

  it('unknown digest/tag → 404 MANIFEST_UNKNOWN; bad references → 400', async () => {
    await pushImage(s, 'del/u', 'x');
    assertError(await request(s, 'DELETE', `/v2/del/u/manifests/${randomDigest()}`), 404, 'MANIFEST_UNKNOWN');
    assertError(await request(s, 'DELETE', '/v2/del/u/manifests/nosuchtag'), 404, 'MANIFEST_UNKNOWN');
    assertError(await request(s, 'DELETE', '/v2/del/u/manifests/sha256:zz'), 400, 'DIGEST_INVALID');
    assertError(await request(s, 'DELETE', '/v2/del/u/manifests/-x'), 400, 'TAG_INVALID');
    const unknownRepo = await request(s, 'DELETE', '/v2/del/never/manifests/x');
    assert.equal(unknownRepo.status, 404);
  });

  it('with deletes disabled → 405 UNSUPPORTED, by digest and by tag, nothing removed', async () => {
    const ro = await startServer({ deleteEnabled: false });
    try {
      const img = await pushImage(ro, 'r', 'v1');
      const before = listOnlyFiles(ro.dir!);
      assertError(await request(ro, 'DELETE', `/v2/r/manifests/${img.digest}`), 405, 'UNSUPPORTED');
      assertError(await request(ro, 'DELETE', '/v2/r/manifests/v1'), 405, 'UNSUPPORTED');
      assert.deepEqual(listOnlyFiles(ro.dir!), before);
      assert.equal((await request(ro, 'GET', '/v2/r/manifests/v1', { headers: { Accept: ACCEPT_ALL } })).status, 200);
    } finally {
      await ro.close();
    }
  });
});

describe('storage layout (Distribution compatible)', () => {
  it('a pushed image lands where Distribution puts it; link files hold the digest with no newline', async () => {
    const img = await pushImage(s, 'layout/app', 'v1');
    const root = storageRoot(s.dir!);
    const hexPath = (d: string) => `${d.split(':')[0]}/${hexOf(d)}`;
    const expectLink = (p: string, digest: string) => {
      const text = fs.readFileSync(path.join(root, p), 'utf8');
      assert.equal(text, digest, p);
      assert.ok(!text.endsWith('\n'));
    };
    for (const d of [img.configDigest, img.layerDigest, img.digest]) {
      const data = path.join(root, 'blobs', 'sha256', hexOf(d).slice(0, 2), hexOf(d), 'data');
      assert.ok(fs.existsSync(data), data);
      assert.equal(sha256(fs.readFileSync(data)), d);
    }
    assert.ok(fs.readFileSync(path.join(root, 'blobs/sha256', hexOf(img.digest).slice(0, 2), hexOf(img.digest), 'data')).equals(img.content));
    expectLink(`repositories/layout/app/_layers/${hexPath(img.configDigest)}/link`, img.configDigest);
    expectLink(`repositories/layout/app/_layers/${hexPath(img.layerDigest)}/link`, img.layerDigest);
    expectLink(`repositories/layout/app/_manifests/revisions/${hexPath(img.digest)}/link`, img.digest);
    expectLink('repositories/layout/app/_manifests/tags/v1/current/link', img.digest);
    expectLink(`repositories/layout/app/_manifests/tags/v1/index/${hexPath(img.digest)}/link`, img.digest);
    // Nothing else in the repository but the uploads directory (empty once uploads are done).
    const files = listOnlyFiles(path.join(root, 'repositories/layout/app'));
    assert.deepEqual(
      files,
      [
        `_layers/${hexPath(img.configDigest)}/link`,
        `_layers/${hexPath(img.layerDigest)}/link`,
        `_manifests/revisions/${hexPath(img.digest)}/link`,
        `_manifests/tags/v1/current/link`,
        `_manifests/tags/v1/index/${hexPath(img.digest)}/link`,
      ].sort(),
    );
  });
});

function errorCodeOf(res: Res): string {
  return res.json().errors[0].code;
}

/** Send a request head only; resolve with what the server answers before it closes. */
function rawHeadersOnly(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(head));
    const parts: Buffer[] = [];
    sock.on('data', (c) => {
      parts.push(c);
      const text = Buffer.concat(parts).toString('latin1');
      const m = /\r\ncontent-length: (\d+)\r\n/i.exec(text);
      const end = text.indexOf('\r\n\r\n');
      if (m && end >= 0 && text.length >= end + 4 + Number(m[1])) {
        sock.destroy();
        resolve(text);
      }
    });
    sock.on('end', () => resolve(Buffer.concat(parts).toString('latin1')));
    sock.on('error', reject);
  });
}
