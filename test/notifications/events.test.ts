// The events Wharf posts for each registry operation, field by field, as Distribution emits them
// (checked against docker-registry 2.8 by hand and by test/e2e/notifications.test.ts), received by
// a real HTTP endpoint on 127.0.0.1.
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { EVENTS_MEDIA_TYPE } from '../../src/notifications/index.js';
import {
  DOCKER_LIST,
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_LAYER,
  OCI_MANIFEST,
  locationPath,
  pushImage,
  putManifest,
  request,
  sha256,
  startUpload,
  withQuery,
  type PushedImage,
} from '../server/helpers.js';
import { endpoint, startNotifying, UUID, type NotifyingServer } from './helpers.js';
import { startReceiver, type Receiver } from './receiver.js';

const OCTET = 'application/octet-stream';

describe('notification events', () => {
  let receiver: Receiver;
  let server: NotifyingServer;
  let seen = 0;
  let image: PushedImage;

  /** Wait for `n` more accepted events and return them. */
  async function next(n: number): Promise<any[]> {
    const want = seen + n;
    await receiver.waitFor(() => receiver.accepted.length >= want, `${n} more events`);
    const events = receiver.accepted.slice(seen, want);
    seen = want;
    return events;
  }

  /** Nothing more arrives within a short while. */
  async function nothingMore(): Promise<void> {
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(receiver.accepted.slice(seen).map((e) => `${e.action} ${JSON.stringify(e.target)}`), []);
  }

  const blobURL = (repo: string, digest: string) => `http://127.0.0.1:${server.port}/v2/${repo}/blobs/${digest}`;
  const manifestURL = (repo: string, digest: string) => `http://127.0.0.1:${server.port}/v2/${repo}/manifests/${digest}`;

  before(async () => {
    receiver = await startReceiver();
    server = await startNotifying({
      includeReferences: true,
      endpoints: [endpoint(`${receiver.url}?x=1`, { headers: { 'X-Test': ['a', 'b'], Authorization: ['Bearer secret'] } })],
    });
  });
  after(async () => {
    await server?.close();
    await receiver?.stop();
  });

  test('a push: one POST per event, the envelope media type and the configured headers; blobs then the manifest', async () => {
    image = await pushImage(server, 'team/app', 'v1');
    const [config, layer, manifest] = await next(3);
    for (const r of receiver.requests.slice(0, 3)) {
      assert.equal(r.method, 'POST');
      assert.equal(r.path, '/hook?x=1');
      assert.equal(r.headers['content-type'], EVENTS_MEDIA_TYPE);
      assert.equal(r.headers['x-test'], 'a, b');
      assert.equal(r.headers.authorization, 'Bearer secret');
      assert.equal(r.envelope?.events.length, 1);
    }
    const started = Date.now();
    for (const e of [config, layer, manifest]) {
      assert.match(e.id, UUID);
      assert.ok(Math.abs(Date.parse(e.timestamp) - started) < 10_000, e.timestamp);
      assert.equal(e.action, 'push');
      assert.match(e.request.id, UUID);
      assert.match(e.request.addr, /^127\.0\.0\.1:\d+$/);
      assert.equal(e.request.host, `127.0.0.1:${server.port}`);
      assert.equal(e.request.useragent, '');
      assert.deepEqual(e.actor, {});
      assert.deepEqual(e.source, { addr: `${hostname()}:0`, instanceID: config.source.instanceID });
      assert.match(e.source.instanceID, UUID);
    }
    assert.deepEqual(Object.keys(config), ['id', 'timestamp', 'action', 'target', 'request', 'actor', 'source']);
    assert.equal(new Set([config.id, layer.id, manifest.id]).size, 3);
    assert.equal(config.request.method, 'PUT');
    const configSize = JSON.parse(image.content.toString()).config.size;
    assert.deepEqual(config.target, {
      mediaType: OCTET,
      digest: image.configDigest,
      size: configSize,
      length: configSize,
      repository: 'team/app',
      url: blobURL('team/app', image.configDigest),
    });
    assert.equal(layer.target.digest, image.layerDigest);
    assert.equal(manifest.request.method, 'PUT');
    assert.deepEqual(manifest.target, {
      mediaType: OCI_MANIFEST,
      digest: image.digest,
      size: image.size,
      length: image.size,
      repository: 'team/app',
      url: manifestURL('team/app', image.digest),
      tag: 'v1',
      references: [
        { mediaType: OCI_CONFIG, digest: image.configDigest, size: configSize },
        { mediaType: OCI_LAYER, digest: image.layerDigest, size: layer.target.size },
      ],
    });
  });

  test('manifest pulls: GET and HEAD, by tag (tag set) and by digest; a 304 is no pull; the actor is the Basic user', async () => {
    const headers = { Accept: OCI_MANIFEST, 'User-Agent': 'test-agent/1.0', Authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}`, 'X-Forwarded-For': '203.0.113.9, 10.0.0.1' };
    assert.equal((await request(server, 'GET', '/v2/team/app/manifests/v1', { headers })).status, 200);
    assert.equal((await request(server, 'HEAD', `/v2/team/app/manifests/${image.digest}`, { headers: { Accept: OCI_MANIFEST } })).status, 200);
    const etag = `"${image.digest}"`;
    assert.equal((await request(server, 'GET', '/v2/team/app/manifests/v1', { headers: { Accept: OCI_MANIFEST, 'If-None-Match': etag } })).status, 304);
    const [byTag, byDigest] = await next(2);
    assert.equal(byTag.action, 'pull');
    assert.equal(byTag.target.tag, 'v1');
    assert.equal(byTag.target.references.length, 2);
    assert.deepEqual(byTag.actor, { name: 'alice' });
    assert.equal(byTag.request.addr, '203.0.113.9');
    assert.equal(byTag.request.method, 'GET');
    assert.equal(byTag.request.useragent, 'test-agent/1.0');
    assert.equal(byDigest.request.method, 'HEAD');
    assert.equal(byDigest.target.tag, undefined);
    assert.equal(byDigest.target.url, manifestURL('team/app', image.digest));
    await nothingMore();
  });

  test('blob pulls: GET, HEAD, 304 and an unsatisfiable range are pulls (as in Distribution); a missing blob is none', async () => {
    const p = `/v2/team/app/blobs/${image.layerDigest}`;
    assert.equal((await request(server, 'GET', p)).status, 200);
    assert.equal((await request(server, 'HEAD', p)).status, 200);
    assert.equal((await request(server, 'GET', p, { headers: { 'If-None-Match': `"${image.layerDigest}"` } })).status, 304);
    assert.equal((await request(server, 'GET', p, { headers: { Range: 'bytes=100000-' } })).status, 416);
    assert.equal((await request(server, 'HEAD', `/v2/team/app/blobs/${sha256('nobody pushed this')}`)).status, 404);
    const pulls = await next(4);
    assert.deepEqual(pulls.map((e) => [e.action, e.request.method]), [['pull', 'GET'], ['pull', 'HEAD'], ['pull', 'GET'], ['pull', 'GET']]);
    for (const e of pulls) {
      assert.deepEqual(e.target, {
        mediaType: OCTET,
        digest: image.layerDigest,
        size: e.target.size,
        length: e.target.size,
        repository: 'team/app',
        url: blobURL('team/app', image.layerDigest),
      });
    }
    await nothingMore();
  });

  test('a cross-repository mount names fromRepository; a mount that falls back to an upload is no event', async () => {
    const mount = await request(server, 'POST', `/v2/other/app/blobs/uploads/?mount=${image.layerDigest}&from=team/app`);
    assert.equal(mount.status, 201);
    const missing = await request(server, 'POST', `/v2/other/app/blobs/uploads/?mount=${sha256('absent')}&from=team/app`);
    assert.equal(missing.status, 202);
    const [mounted] = await next(1);
    assert.equal(mounted.action, 'mount');
    assert.equal(mounted.request.method, 'POST');
    assert.deepEqual(mounted.target, {
      mediaType: OCTET,
      digest: image.layerDigest,
      size: mounted.target.size,
      length: mounted.target.size,
      repository: 'other/app',
      fromRepository: 'team/app',
      url: blobURL('other/app', image.layerDigest),
    });
    await nothingMore();
  });

  test('a monolithic upload (POST ?digest=) is a push', async () => {
    const data = Buffer.from('monolithic blob');
    const digest = sha256(data);
    const res = await request(server, 'POST', `/v2/other/app/blobs/uploads/?digest=${digest}`, { body: data, headers: { 'Content-Type': OCTET } });
    assert.equal(res.status, 201);
    const [push] = await next(1);
    assert.equal(push.request.method, 'POST');
    assert.deepEqual(push.target, { mediaType: OCTET, digest, size: data.length, length: data.length, repository: 'other/app', url: blobURL('other/app', digest) });
  });

  test('deletes: a blob (digest and repository only), a tag, a manifest by digest (then each tag it had), a repository', async () => {
    assert.equal((await request(server, 'DELETE', `/v2/other/app/blobs/${image.layerDigest}`)).status, 202);
    assert.equal((await putManifest(server, 'team/app', 'v2', image.content, OCI_MANIFEST)).status, 201);
    assert.equal((await putManifest(server, 'team/app', 'v3', image.content, OCI_MANIFEST)).status, 201);
    assert.equal((await putManifest(server, 'team/app', image.digest, image.content, OCI_MANIFEST)).status, 201);
    assert.equal((await request(server, 'DELETE', '/v2/team/app/manifests/v2')).status, 202);
    assert.equal((await request(server, 'DELETE', `/v2/team/app/manifests/${image.digest}`)).status, 202);
    assert.equal((await request(server, 'DELETE', '/v2/_wharf/repositories/other/app')).status, 202);
    const [blob, v2, v3, byDigest, untagV2, manifest, untagV1, untagV3, repo] = await next(9);
    assert.deepEqual([blob.action, blob.request.method, blob.target], ['delete', 'DELETE', { digest: image.layerDigest, repository: 'other/app' }]);
    assert.deepEqual([v2.action, v2.target.tag, v3.target.tag, byDigest.target.tag], ['push', 'v2', 'v3', undefined]);
    assert.equal(byDigest.target.digest, image.digest);
    assert.deepEqual(untagV2.target, { repository: 'team/app', tag: 'v2' });
    assert.deepEqual(manifest.target, { digest: image.digest, repository: 'team/app' });
    assert.deepEqual([untagV1.target, untagV3.target], [{ repository: 'team/app', tag: 'v1' }, { repository: 'team/app', tag: 'v3' }]);
    assert.equal(manifest.request.id, untagV1.request.id, 'the events of one request share its request record');
    assert.notEqual(manifest.id, untagV1.id);
    for (const e of [untagV2, manifest, untagV1, untagV3]) assert.equal(e.action, 'delete');
    assert.deepEqual([repo.action, repo.target], ['delete', { repository: 'other/app' }]);
    await nothingMore();
  });

  test('a manifest list pulled by tag by a client that does not accept lists: the list and the child it is answered with', async () => {
    const child = await pushImage(server, 'multi/app', 'digest', { mediaType: DOCKER_MANIFEST });
    const platform = { architecture: 'amd64', os: 'linux' };
    const list = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_LIST, manifests: [{ mediaType: DOCKER_MANIFEST, digest: child.digest, size: child.size, platform }] }));
    assert.equal((await putManifest(server, 'multi/app', 'latest', list, DOCKER_LIST)).status, 201);
    const pushed = await next(4);
    assert.deepEqual(pushed[3].target.references, [{ mediaType: DOCKER_MANIFEST, digest: child.digest, size: child.size, platform }]);
    const res = await request(server, 'GET', '/v2/multi/app/manifests/latest', { headers: { Accept: DOCKER_MANIFEST } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['docker-content-digest'], child.digest);
    const [ofList, ofChild] = await next(2);
    assert.deepEqual([ofList.target.digest, ofList.target.tag, ofList.target.mediaType], [sha256(list), 'latest', DOCKER_LIST]);
    assert.deepEqual([ofChild.target.digest, ofChild.target.tag, ofChild.target.mediaType], [child.digest, undefined, DOCKER_MANIFEST]);
    assert.equal(ofList.request.id, ofChild.request.id);
  });

  test('a blob pushed in PATCH chunks is one push, when the upload completes', async () => {
    const data = Buffer.alloc(3000, 7);
    const digest = sha256(data);
    const { location } = await startUpload(server, 'team/chunks');
    const first = await request(server, 'PATCH', location, { body: data.subarray(0, 1000), headers: { 'Content-Range': '0-999' } });
    assert.equal(first.status, 202);
    const second = await request(server, 'PATCH', locationPath(first), { body: data.subarray(1000), headers: { 'Content-Range': '1000-2999' } });
    assert.equal(second.status, 202);
    await nothingMore();
    assert.equal((await request(server, 'PUT', withQuery(locationPath(second), `digest=${digest}`))).status, 201);
    const [push] = await next(1);
    assert.deepEqual([push.action, push.target.digest, push.target.size], ['push', digest, 3000]);
    await nothingMore();
  });
});

describe('notifications.events.includereferences off', () => {
  test('manifest events carry no references', async () => {
    const receiver = await startReceiver();
    const server = await startNotifying({ endpoints: [endpoint(receiver.url)] });
    try {
      await pushImage(server, 'plain/app', 'v1');
      assert.equal((await request(server, 'GET', '/v2/plain/app/manifests/v1', { headers: { Accept: OCI_MANIFEST } })).status, 200);
      await receiver.waitFor(() => receiver.accepted.length === 4, '4 events');
      const [push, pull] = receiver.accepted.slice(2);
      assert.deepEqual([push.action, pull.action], ['push', 'pull']);
      assert.equal('references' in push.target, false);
      assert.equal('references' in pull.target, false);
    } finally {
      await server.close();
      await receiver.stop();
    }
  });
});
