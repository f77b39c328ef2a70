// The pull-through cache in front of a real upstream (Wharf on loopback, behind a recording proxy
// that counts what reaches it): manifests by tag and digest, blobs, HEADs, tag lists, tags that move,
// an upstream that goes away, pushes and deletes refused as Distribution refuses them, the catalog,
// and several upstreams by prefix next to local repositories that accept pushes.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ACCEPT_ALL, assertError, pushBlob, pushImage, request, sha256, storageRoot, type PushedImage, type TestServer } from '../server/helpers.js';
import { eventually, removeDir, startCache, startRecordingProxy, startUpstream, upstream, type CacheServer, type RecordingProxy } from './helpers.js';

const manifest = (server: { port: number }, name: string, ref: string, method = 'GET') =>
  request(server, method, `/v2/${name}/manifests/${ref}`, { headers: { Accept: ACCEPT_ALL } });
const blob = (server: { port: number }, name: string, digest: string, method = 'GET') => request(server, method, `/v2/${name}/blobs/${digest}`);
const layersOf = (img: PushedImage) => [img.configDigest, img.layerDigest];

describe('pull-through cache', { timeout: 120_000 }, () => {
  let origin: TestServer;
  let recorder: RecordingProxy;
  let cache: CacheServer;
  let v1: PushedImage;
  const seen = (pred: (r: { method: string; url: string }) => boolean) => recorder.requests.filter(pred).length;

  before(async () => {
    origin = await startUpstream();
    recorder = await startRecordingProxy(origin.port);
    cache = await startCache([upstream(recorder.url)], { saveEveryMs: 100 });
    v1 = await pushImage(origin, 'team/app', 'v1');
  });
  after(async () => {
    await cache?.close();
    await recorder?.close();
    await origin?.close();
    removeDir(cache?.dir);
  });

  test('a tag, its manifest and blobs come through once; later reads stay local but the tag is asked again', async () => {
    const res = await manifest(cache, 'team/app', 'v1');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, v1.content, 'the exact manifest bytes');
    assert.equal(res.headers['docker-content-digest'], v1.digest);
    for (const d of layersOf(v1)) {
      const b = await blob(cache, 'team/app', d);
      assert.equal(b.status, 200, b.text);
      assert.equal(sha256(b.body), d);
      assert.equal(b.headers['docker-content-digest'], d);
    }
    const gets = seen((r) => r.method === 'GET' && r.url.includes('/blobs/'));
    assert.equal(gets, 2, 'one upstream GET per blob');
    for (const d of layersOf(v1)) assert.equal((await blob(cache, 'team/app', d)).status, 200);
    assert.equal(seen((r) => r.method === 'GET' && r.url.includes('/blobs/')), 2, 'cached blobs are not fetched again');
    const heads = seen((r) => r.method === 'HEAD' && r.url.endsWith('/manifests/v1'));
    assert.equal((await manifest(cache, 'team/app', 'v1')).status, 200);
    assert.equal(seen((r) => r.method === 'HEAD' && r.url.endsWith('/manifests/v1')), heads + 1, 'a tag is resolved at the upstream each time');
    assert.equal(seen((r) => r.method === 'GET' && r.url.includes('/manifests/')), 1, 'the manifest itself is fetched once');
    const before = recorder.requests.length;
    assert.equal((await manifest(cache, 'team/app', v1.digest)).status, 200);
    assert.equal(recorder.requests.length, before, 'by digest a cached manifest needs no upstream');
    const head = await blob(cache, 'team/app', v1.layerDigest, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers['content-length']), (await blob(origin, 'team/app', v1.layerDigest)).body.length);
  });

  test('a tag moved at the upstream is followed; the old digest stays readable', async () => {
    const v1b = await pushImage(origin, 'team/app', 'v1');
    const res = await manifest(cache, 'team/app', 'v1');
    assert.equal(res.headers['docker-content-digest'], v1b.digest);
    assert.deepEqual(res.body, v1b.content);
    assert.equal((await manifest(cache, 'team/app', v1.digest)).status, 200, 'the earlier manifest is still cached');
    v1 = v1b;
    for (const d of layersOf(v1)) assert.equal((await blob(cache, 'team/app', d)).status, 200);
  });

  test('a range of an uncached blob streams the whole blob at once (200); once cached, a range is a 206 of just those bytes', async () => {
    const img = await pushImage(origin, 'team/range', 'r1');
    const full = (await blob(origin, 'team/range', img.layerDigest)).body;
    const ranged = (server: { port: number }) => request(server, 'GET', `/v2/team/range/blobs/${img.layerDigest}`, { headers: { Range: 'bytes=10-20' } });
    const first = await ranged(cache);
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.body, full, 'the whole blob, as Distribution\'s proxy sends it');
    assert.equal(first.headers['docker-content-digest'], img.layerDigest);
    await eventually(async () => (await ranged(cache)).status === 206, 10_000, 'the blob is cached');
    const second = await ranged(cache);
    assert.equal(second.headers['content-range'], `bytes 10-20/${full.length}`);
    assert.deepEqual(second.body, full.subarray(10, 21));
    assert.equal(seen((r) => r.method === 'GET' && r.url.includes(img.layerDigest)), 1, 'one upstream GET');
  });

  test('HEAD of an uncached blob asks the upstream and stores nothing; unknown content is 404', async () => {
    const img = await pushImage(origin, 'team/head', 'h1');
    const head = await blob(cache, 'team/head', img.layerDigest, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['docker-content-digest'], img.layerDigest);
    assert.equal(head.headers['content-length'], (await blob(origin, 'team/head', img.layerDigest, 'HEAD')).headers['content-length']);
    assert.equal(seen((r) => r.method === 'GET' && r.url.includes(img.layerDigest)), 0, 'a HEAD downloads nothing');
    const missing = sha256('nobody pushed this');
    assertError(await blob(cache, 'team/head', missing), 404, 'BLOB_UNKNOWN');
    assert.equal((await blob(cache, 'team/head', missing, 'HEAD')).status, 404);
    assertError(await manifest(cache, 'team/head', missing), 404, 'MANIFEST_UNKNOWN');
    assertError(await manifest(cache, 'team/nothing', 'latest'), 404, 'MANIFEST_UNKNOWN');
  });

  test('tags/list is the upstream\'s, paginated like any list', async () => {
    for (const t of ['a1', 'b2', 'c3']) await pushImage(origin, 'team/tags', t);
    const res = await request(cache, 'GET', '/v2/team/tags/tags/list');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json(), { name: 'team/tags', tags: ['a1', 'b2', 'c3'] }, 'listed without any pull through the cache');
    const page = await request(cache, 'GET', '/v2/team/tags/tags/list?n=2');
    assert.deepEqual(page.json().tags, ['a1', 'b2']);
    assert.equal(page.headers.link, '</v2/team/tags/tags/list?last=b2&n=2>; rel="next"');
    assertError(await request(cache, 'GET', '/v2/team/tags/tags/list?n=x'), 400, 'PAGINATION_NUMBER_INVALID');
  });

  test('pushes and deletes answer 405 UNSUPPORTED with Distribution\'s message; upload status is unknown', async () => {
    const unsupported = async (method: string, path: string, body?: string) => {
      const res = await request(cache, method, path, body === undefined ? {} : { body, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
      assertError(res, 405, 'UNSUPPORTED');
      assert.equal(res.json().errors[0].message, 'The operation is unsupported.', `${method} ${path}`);
    };
    await unsupported('POST', '/v2/team/app/blobs/uploads/');
    await unsupported('POST', `/v2/team/app/blobs/uploads/?mount=${v1.layerDigest}&from=team/head`);
    await unsupported('POST', `/v2/team/app/blobs/uploads/?digest=${sha256('x')}`, 'x');
    await unsupported('PATCH', '/v2/team/app/blobs/uploads/some-id', 'x');
    await unsupported('PUT', `/v2/team/app/blobs/uploads/some-id?digest=${sha256('')}`);
    await unsupported('DELETE', '/v2/team/app/blobs/uploads/some-id');
    await unsupported('PUT', '/v2/team/app/manifests/v2', v1.content.toString());
    await unsupported('DELETE', `/v2/team/app/manifests/${v1.digest}`);
    await unsupported('DELETE', `/v2/team/app/blobs/${v1.layerDigest}`);
    assertError(await request(cache, 'GET', '/v2/team/app/blobs/uploads/some-id'), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.equal((await manifest(cache, 'team/app', v1.digest)).status, 200, 'nothing was deleted');
  });

  test('a blob another repository brought is linked once the upstream confirms this repository has it', async () => {
    const shared = Buffer.from(`shared layer ${Math.random()}`);
    const digest = await pushBlob(origin, 'team/one', shared);
    await pushBlob(origin, 'team/two', shared);
    assert.equal((await blob(cache, 'team/one', digest)).status, 200);
    // The client has its bytes before the cache commits them (a rename and a link here): wait for that.
    await eventually(() => fs.existsSync(path.join(storageRoot(cache.dir), 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data')), 10_000, 'the commit');
    const gets = seen((r) => r.method === 'GET' && r.url.endsWith(digest));
    const res = await blob(cache, 'team/two', digest);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, shared);
    assert.equal(seen((r) => r.method === 'GET' && r.url.endsWith(digest)), gets, 'no second download');
    assert.equal(seen((r) => r.method === 'HEAD' && r.url === `/v2/team/two/blobs/${digest}`), 1, 'one HEAD to check team/two');
    assertError(await blob(cache, 'team/three', digest), 404, 'BLOB_UNKNOWN');
  });

  test('the catalog lists the cached repositories', async () => {
    const res = await request(cache, 'GET', '/v2/_catalog');
    assert.equal(res.status, 200);
    const repos: string[] = res.json().repositories;
    for (const r of ['team/app', 'team/one', 'team/two']) assert.ok(repos.includes(r), `${r} in ${repos.join(', ')}`);
    assert.ok(!repos.includes('team/tags'), 'a repository only listed, never pulled, is not cached');
  });

  test('with the upstream gone: cached tags and content are served, uncached content is 503 or 404', async () => {
    const extra = await pushImage(origin, 'team/app', 'later');
    await recorder.close();
    const res = await manifest(cache, 'team/app', 'v1');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['docker-content-digest'], v1.digest);
    for (const d of layersOf(v1)) assert.equal((await blob(cache, 'team/app', d)).status, 200);
    assertError(await manifest(cache, 'team/app', 'later'), 404, 'MANIFEST_UNKNOWN');
    const byDigest = await manifest(cache, 'team/app', extra.digest);
    assertError(byDigest, 503, 'UNAVAILABLE');
    assert.match(byDigest.json().errors[0].message, /upstream registry is unavailable: .*cannot be reached: ECONNREFUSED/);
    assertError(await blob(cache, 'team/app', extra.layerDigest), 503, 'UNAVAILABLE');
    assert.equal((await blob(cache, 'team/app', extra.layerDigest, 'HEAD')).status, 503);
    const tags = await request(cache, 'GET', '/v2/team/app/tags/list');
    assert.deepEqual(tags.json(), { name: 'team/app', tags: ['v1'] }, 'the cached tags');
  });
});

describe('several upstreams by prefix, next to local repositories', { timeout: 120_000 }, () => {
  let hub: TestServer;
  let other: TestServer;
  let cache: CacheServer;

  before(async () => {
    hub = await startUpstream();
    other = await startUpstream();
    cache = await startCache([
      upstream(hub.url, { prefix: 'hub', key: 'proxy.upstreams[0]' }),
      upstream(other.url, { prefix: 'mirrors/other', key: 'proxy.upstreams[1]' }),
    ]);
  });
  after(async () => {
    await cache?.close();
    await hub?.close();
    await other?.close();
    removeDir(cache?.dir);
  });

  test('each prefix reads its own upstream with the prefix stripped; other names are local and take pushes', async () => {
    const fromHub = await pushImage(hub, 'team/app', 'v1');
    const fromOther = await pushImage(other, 'x', 'v1');
    const a = await manifest(cache, 'hub/team/app', 'v1');
    assert.equal(a.headers['docker-content-digest'], fromHub.digest);
    assert.equal((await blob(cache, 'hub/team/app', fromHub.layerDigest)).status, 200);
    const b = await manifest(cache, 'mirrors/other/x', 'v1');
    assert.equal(b.headers['docker-content-digest'], fromOther.digest);
    // As in Distribution 2.8, the catalog lists repositories that hold a blob (a `_layers` directory).
    assert.equal((await blob(cache, 'mirrors/other/x', fromOther.configDigest)).status, 200);
    assertError(await manifest(cache, 'mirrors/x', 'v1'), 404, 'MANIFEST_UNKNOWN');

    const local = await pushImage(cache, 'mine/app', 'v1');
    assert.equal((await manifest(cache, 'mine/app', 'v1')).headers['docker-content-digest'], local.digest);
    assert.equal((await blob(cache, 'mine/app', local.layerDigest)).status, 200);
    assert.equal((await request(cache, 'DELETE', `/v2/mine/app/manifests/${local.digest}`)).status, 202, 'local repositories take deletes');
    assertError(await request(cache, 'POST', '/v2/hub/team/app/blobs/uploads/'), 405, 'UNSUPPORTED');
    assertError(await request(cache, 'POST', '/v2/hub/blobs/uploads/'), 405, 'UNSUPPORTED');
    const bare = await manifest(cache, 'hub', 'v1');
    assertError(bare, 404, 'NAME_UNKNOWN');
    assert.match(bare.json().errors[0].message, /prefix of proxy\.upstreams\[0\]/);
    assert.equal((await manifest(cache, 'hubx/app', 'v1')).status, 404, 'hubx is not under the prefix hub: a local repository');
    assert.equal((await pushImage(cache, 'hubx/app', 'v1')).digest.startsWith('sha256:'), true);

    const repos: string[] = (await request(cache, 'GET', '/v2/_catalog')).json().repositories;
    for (const r of ['hub/team/app', 'mirrors/other/x', 'mine/app', 'hubx/app']) assert.ok(repos.includes(r), `${r} in ${repos.join(', ')}`);
  });
});
