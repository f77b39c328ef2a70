// storage.cache.blobdescriptor: redis against a real redis-server (scripts/services/redis-start.sh):
// Distribution's keys and values, answers served from Redis (by a second instance, without storage
// reads), and every delete path clearing what it made stale (Distribution #1803). Database 1.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { ACCEPT_ALL, assertError, hexOf, pushBlob, pushImage, request, storageRoot } from '../server/helpers.js';
import { dump, eventually, sharedRedis, type RedisServer } from './redis-helpers.js';
import { redisConfigYaml, startRedisWharf, tempDataDir, type RedisWharf } from './redis-wharf.js';

const DB = 1;
const OCTET = 'application/octet-stream';
const run = promisify(execFile);
const WHARF = path.resolve(import.meta.dirname, '../../../bin/wharf.js');

describe('redis blob descriptor cache', { timeout: 120_000 }, () => {
  let redis: RedisServer;
  let r: Redis;
  let dir: string;
  let a: RedisWharf; // two instances on one storage and one Redis, as a fleet
  let b: RedisWharf;
  const lines = () => [`addr: ${redis.addr}`, `db: ${DB}`];

  before(async () => {
    redis = await sharedRedis();
    r = redis.client(DB);
    await r.flushdb();
    dir = tempDataDir('cache');
    a = await startRedisWharf(dir, lines());
    b = await startRedisWharf(dir, lines());
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await r?.flushdb();
    r?.disconnect();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await r.flushdb();
  });

  it("stores descriptors under Distribution's keys: blobs::<digest>, repository::<name>::blobs[::<digest>]", async () => {
    const digest = await pushBlob(a, 'team/app', 'some layer bytes');
    assert.deepEqual(await dump(r), {
      [`blobs::${digest}`]: { digest, size: '16', mediatype: OCTET },
      'repository::team/app::blobs': [digest],
      [`repository::team/app::blobs::${digest}`]: { mediatype: OCTET },
    });
    // A cross-repository mount records the target repository too.
    const mount = await request(a, 'POST', `/v2/other/blobs/uploads/?mount=${digest}&from=team/app`);
    assert.equal(mount.status, 201, mount.text);
    assert.deepEqual((await dump(r))['repository::other::blobs'], [digest]);
    assert.deepEqual((await dump(r))[`repository::other::blobs::${digest}`], { mediatype: OCTET });
  });

  it('a second instance answers HEAD from Redis without reading storage', async () => {
    const digest = await pushBlob(a, 'team/app', 'cached layer');
    b.reads.reset();
    const head = await request(b, 'HEAD', `/v2/team/app/blobs/${digest}`);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '12');
    assert.equal(head.headers['docker-content-digest'], digest);
    assert.equal(b.reads.count, 0, 'storage reads for a cached HEAD');
    // Without the cache entry the same HEAD reads storage, and puts the entry back.
    await r.flushdb();
    assert.equal((await request(b, 'HEAD', `/v2/team/app/blobs/${digest}`)).status, 200);
    assert.ok(b.reads.count > 0, 'a HEAD the cache cannot answer reads storage');
    await eventually('the entry written back', async () => (await r.sismember('repository::team/app::blobs', digest)) === 1);
  });

  it('reads entries docker-registry wrote, and treats a partial entry as a miss', async () => {
    const digest = await pushBlob(a, 'team/app', 'written by another registry');
    // Distribution 2.8's older "length" field instead of "size": a miss, answered from storage.
    await r.flushdb();
    await r.hset(`blobs::${digest}`, 'digest', digest, 'length', '27', 'mediatype', OCTET);
    await r.sadd('repository::team/app::blobs', digest);
    await r.hset(`repository::team/app::blobs::${digest}`, 'mediatype', OCTET);
    b.reads.reset();
    assert.equal((await request(b, 'HEAD', `/v2/team/app/blobs/${digest}`)).status, 200);
    assert.ok(b.reads.count > 0);
    // The miss wrote the entry back, in Distribution's form.
    await eventually('the entry rewritten', async () => (await r.hget(`repository::team/app::blobs::${digest}`, 'mediatype')) === OCTET);
    assert.deepEqual(await r.hgetall(`blobs::${digest}`), { digest, length: '27', size: '27', mediatype: OCTET });
    // Membership without the per-repository hash: a miss too, as in Distribution.
    await r.del(`repository::team/app::blobs::${digest}`);
    b.reads.reset();
    assert.equal((await request(b, 'HEAD', `/v2/team/app/blobs/${digest}`)).status, 200);
    assert.ok(b.reads.count > 0);
  });

  it("drops the membership Distribution 2.8 leaves after its delete once storage says the link is gone", async () => {
    const digest = await pushBlob(a, 'team/app', 'deleted by 2.8');
    await pushBlob(a, 'team/other', 'deleted by 2.8');
    // docker-registry 2.8's DELETE: the link goes, blobs::<digest> is emptied, the set member stays.
    fs.rmSync(path.join(storageRoot(dir), 'repositories/team/app/_layers/sha256', hexOf(digest), 'link'));
    await r.hdel(`blobs::${digest}`, 'digest', 'size', 'mediatype');
    assert.equal((await request(b, 'HEAD', `/v2/team/app/blobs/${digest}`)).status, 404);
    await eventually('the stale member dropped', async () => (await r.sismember('repository::team/app::blobs', digest)) === 0);
    // The blob is still another repository's: its global entry comes back, and must not revive the first answer.
    assert.equal((await request(b, 'HEAD', `/v2/team/other/blobs/${digest}`)).status, 200);
    await eventually('the global entry back', async () => (await r.exists(`blobs::${digest}`)) === 1);
    assert.equal((await request(a, 'HEAD', `/v2/team/app/blobs/${digest}`)).status, 404);
  });

  it('DELETE of a blob clears its repository entry: the other instance answers 404', async () => {
    const digest = await pushBlob(a, 'team/app', 'to be deleted');
    await pushBlob(a, 'keep', 'to be deleted');
    assert.equal((await request(b, 'HEAD', `/v2/team/app/blobs/${digest}`)).status, 200);
    assert.equal((await request(a, 'DELETE', `/v2/team/app/blobs/${digest}`)).status, 202);
    assert.equal(await r.sismember('repository::team/app::blobs', digest), 0);
    assert.equal(await r.exists(`repository::team/app::blobs::${digest}`), 0);
    assert.equal((await request(b, 'HEAD', `/v2/team/app/blobs/${digest}`)).status, 404);
    // Other repositories keep the blob (and their entries).
    assert.equal(await r.sismember('repository::keep::blobs', digest), 1);
    assert.equal((await request(b, 'HEAD', `/v2/keep/blobs/${digest}`)).status, 200);
    // Pushing it again links it again.
    await pushBlob(b, 'team/app', 'to be deleted');
    assert.equal((await request(a, 'HEAD', `/v2/team/app/blobs/${digest}`)).status, 200);
  });

  it('a stale entry (link removed behind the cache) is cleared by DELETE, which answers 404', async () => {
    const digest = await pushBlob(a, 'team/app', 'stale entry');
    fs.rmSync(path.join(storageRoot(dir), 'repositories/team/app/_layers/sha256', hexOf(digest)), { recursive: true });
    assert.equal((await request(b, 'HEAD', `/v2/team/app/blobs/${digest}`)).status, 200, 'served from the cache');
    assertError(await request(a, 'DELETE', `/v2/team/app/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    assert.equal((await request(b, 'HEAD', `/v2/team/app/blobs/${digest}`)).status, 404);
  });

  it('a manifest deleted on one instance is unknown on the other at once (no revision kept in-process)', async () => {
    const image = await pushImage(a, 'team/app', 'v1');
    const head = () => request(b, 'HEAD', `/v2/team/app/manifests/${image.digest}`, { headers: { accept: ACCEPT_ALL } });
    assert.equal((await head()).status, 200);
    assert.equal((await request(a, 'DELETE', `/v2/team/app/manifests/${image.digest}`)).status, 202);
    assert.equal((await head()).status, 404);
    assert.equal((await request(b, 'GET', `/v2/team/app/manifests/v1`, { headers: { accept: ACCEPT_ALL } })).status, 404);
  });

  it('DELETE /v2/_wharf/repositories/<name> clears every entry of that repository only', async () => {
    const image = await pushImage(a, 'team', 'v1');
    const nested = await pushImage(a, 'team/app', 'v1');
    assert.ok((await r.scard('repository::team::blobs')) >= 2);
    assert.equal((await request(a, 'DELETE', '/v2/_wharf/repositories/team')).status, 202);
    const keys = Object.keys(await dump(r));
    assert.deepEqual(keys.filter((k) => k.startsWith('repository::team::')), []);
    assert.ok(keys.includes('repository::team/app::blobs'), keys.join(' '));
    assert.equal((await request(b, 'HEAD', `/v2/team/blobs/${image.layerDigest}`)).status, 404);
    assert.equal((await request(b, 'HEAD', `/v2/team/app/blobs/${nested.layerDigest}`)).status, 200);
    // A repository Redis still knows but storage no longer has is cleared and answered 404.
    await r.sadd('repository::ghost::blobs', image.layerDigest);
    await r.hset(`repository::ghost::blobs::${image.layerDigest}`, 'mediatype', OCTET);
    assertError(await request(a, 'DELETE', '/v2/_wharf/repositories/ghost'), 404, 'NAME_UNKNOWN');
    assert.equal(await r.exists('repository::ghost::blobs', `repository::ghost::blobs::${image.layerDigest}`), 0);
  });

  it('wharf delete-repository clears the repository entries', async () => {
    const image = await pushImage(a, 'cli/app', 'v1');
    const config = path.join(dir, '..', `${path.basename(dir)}-cli.yml`);
    fs.writeFileSync(config, redisConfigYaml(dir, lines()));
    try {
      const out = await run(process.execPath, [WHARF, 'delete-repository', config, 'cli/app']);
      assert.match(out.stdout, /deleted repository cli\/app/);
    } finally {
      fs.rmSync(config, { force: true });
    }
    assert.deepEqual(Object.keys(await dump(r)).filter((k) => k.startsWith('repository::cli/app::')), []);
    assert.equal((await request(b, 'HEAD', `/v2/cli/app/blobs/${image.layerDigest}`)).status, 404);
  });

  it('wharf garbage-collect leaves Redis agreeing with storage: deleted blobs, missing links and repositories', async () => {
    const kept = await pushImage(a, 'gc/app', 'kept');
    const gone = await pushImage(a, 'gc/app', 'gone', { seed: 'gc-gone' });
    await request(a, 'POST', `/v2/gc/other/blobs/uploads/?mount=${gone.layerDigest}&from=gc/app`);
    await request(b, 'HEAD', `/v2/gc/app/blobs/${gone.configDigest}`);
    // A repository storage does not have (removed behind Wharf's back) but Redis still lists.
    await r.sadd('repository::gc/ghost::blobs', gone.layerDigest, kept.layerDigest);
    await r.hset(`repository::gc/ghost::blobs::${gone.layerDigest}`, 'mediatype', OCTET);
    // A blob whose data went away without Redis being told (as docker-registry garbage-collect leaves it).
    const orphan = await pushBlob(a, 'gc/app', 'orphan data');
    fs.rmSync(path.join(storageRoot(dir), 'blobs/sha256', hexOf(orphan).slice(0, 2), hexOf(orphan)), { recursive: true });
    assert.equal((await request(b, 'HEAD', `/v2/gc/app/blobs/${orphan}`)).status, 200, 'the stale answer GC must remove');
    assert.equal((await request(a, 'DELETE', `/v2/gc/app/manifests/${gone.digest}`)).status, 202);
    const config = path.join(dir, '..', `${path.basename(dir)}-gc.yml`);
    fs.writeFileSync(config, redisConfigYaml(dir, lines()));
    let out;
    try {
      out = await run(process.execPath, [WHARF, 'garbage-collect', config]);
    } finally {
      fs.rmSync(config, { force: true });
    }
    for (const d of [gone.layerDigest, gone.configDigest, gone.digest]) assert.match(out.stdout, new RegExp(`blob eligible for deletion: ${d}`));
    for (const d of [gone.layerDigest, gone.configDigest, gone.digest, orphan]) {
      assert.equal(await r.exists(`blobs::${d}`), 0, `blobs::${d}`);
      for (const repo of ['gc/app', 'gc/other', 'gc/ghost']) {
        assert.equal(await r.sismember(`repository::${repo}::blobs`, d), 0, `${repo} still lists ${d}`);
        assert.equal(await r.exists(`repository::${repo}::blobs::${d}`), 0);
      }
    }
    // Descriptors: gone's layer and config and the orphan (a manifest push caches none); entries: gc/app 3,
    // gc/other 1, gc/ghost 2 (it has no links at all).
    assert.match(out.stderr, /redis blob descriptor cache: removed 3 blob descriptors and 6 repository entries storage no longer backs/);
    // What storage still backs stays cached.
    assert.equal(await r.sismember('repository::gc/app::blobs', kept.layerDigest), 1);
    assert.equal(await r.exists(`blobs::${kept.layerDigest}`), 1);
    // Both instances now answer 404 for what is gone (2.8 leaves the layer link: only the cache could say 200).
    for (const s of [a, b]) {
      assert.equal((await request(s, 'HEAD', `/v2/gc/app/blobs/${gone.layerDigest}`)).status, 404);
      assert.equal((await request(s, 'HEAD', `/v2/gc/app/blobs/${orphan}`)).status, 404);
    }
    // Re-pushing the same image stores the data again and it is served (a client saw 404 above, so it uploads).
    const again = await pushImage(b, 'gc/app', 'again', { seed: 'gc-gone' });
    assert.equal(again.layerDigest, gone.layerDigest);
    const data = path.join(storageRoot(dir), 'blobs/sha256', hexOf(gone.layerDigest).slice(0, 2), hexOf(gone.layerDigest), 'data');
    assert.equal(fs.readFileSync(data, 'utf8'), 'layer gc-gone');
    const get = await request(a, 'GET', `/v2/gc/app/blobs/${gone.layerDigest}`);
    assert.equal(get.status, 200);
    assert.equal(get.text, 'layer gc-gone');
  });
});
