// The redis cache when Redis goes away at run time, on a redis-server of this test's own
// (stopped, restarted, frozen with SIGSTOP): requests keep succeeding from storage, a warning is
// logged once, clears made meanwhile are replayed, and the cache resumes when Redis answers.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { ACCEPT_ALL, pushBlob, pushImage, request } from '../server/helpers.js';
import { eventually, privateRedis, type PrivateRedis } from './redis-helpers.js';
import { startRedisWharf, tempDataDir, type RedisWharf } from './redis-wharf.js';

const UNAVAILABLE = /redis blob descriptor cache unavailable: serving from storage/;
const AVAILABLE_AGAIN = /redis blob descriptor cache available again/;
const count = (logs: string[], re: RegExp) => logs.filter((l) => re.test(l)).length;

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - t0 };
}

describe('redis cache outages', { timeout: 180_000 }, () => {
  let redis: PrivateRedis;
  let r: Redis;
  let dir: string;
  let a: RedisWharf;
  let b: RedisWharf;

  before(async () => {
    redis = await privateRedis('outage');
    r = redis.client(0);
    dir = tempDataDir('outage');
    // A short read timeout, so a frozen Redis is noticed quickly.
    const lines = [`addr: ${redis.addr}`, 'readtimeout: 300ms', 'writetimeout: 300ms', 'dialtimeout: 1s'];
    a = await startRedisWharf(dir, lines);
    b = await startRedisWharf(dir, lines);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    r?.disconnect();
    await redis?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('Redis stopped: pushes, pulls and deletes still succeed; the cache resumes when it is back', async () => {
    const before = await pushImage(a, 'down/app', 'v1');
    assert.equal(await r.sismember('repository::down/app::blobs', before.layerDigest), 1);
    await redis.stop();

    const head = await timed(() => request(a, 'HEAD', `/v2/down/app/blobs/${before.layerDigest}`));
    assert.equal(head.value.status, 200);
    assert.ok(head.ms < 2000, `HEAD took ${head.ms} ms with Redis down`);
    assert.equal((await request(b, 'GET', `/v2/down/app/manifests/v1`, { headers: { accept: ACCEPT_ALL } })).status, 200);
    const pushed = await pushImage(b, 'down/app', 'v2');
    assert.equal((await request(a, 'GET', `/v2/down/app/blobs/${pushed.layerDigest}`)).text.startsWith('layer '), true);
    assert.equal((await request(a, 'DELETE', `/v2/down/app/blobs/${before.configDigest}`)).status, 202);
    assert.equal((await request(b, 'HEAD', `/v2/down/app/blobs/${before.configDigest}`)).status, 404);
    assert.equal((await request(a, 'DELETE', '/v2/_wharf/repositories/down/other')).status, 404);
    for (const s of [a, b]) assert.equal(count(s.logs, UNAVAILABLE), 1, s.logs.join('\n'));

    await redis.start(); // same port, empty (no persistence)
    for (const s of [a, b]) await eventually('the cache resumed', async () => count(s.logs, AVAILABLE_AGAIN) === 1);
    // Used again: a HEAD puts the entry back, and the other instance answers from it without storage reads.
    assert.equal((await request(a, 'HEAD', `/v2/down/app/blobs/${pushed.layerDigest}`)).status, 200);
    await eventually('the entry written', async () => (await r.sismember('repository::down/app::blobs', pushed.layerDigest)) === 1);
    await eventually('the repository hash written', async () => (await r.exists(`repository::down/app::blobs::${pushed.layerDigest}`)) === 1);
    b.reads.reset();
    assert.equal((await request(b, 'HEAD', `/v2/down/app/blobs/${pushed.layerDigest}`)).status, 200);
    assert.equal(b.reads.count, 0);
  });

  it('Redis frozen: requests finish within the read timeout, then skip Redis; clears made meanwhile are replayed', async () => {
    const digest = await pushBlob(a, 'frozen/app', 'frozen layer');
    assert.equal(await r.sismember('repository::frozen/app::blobs', digest), 1);
    const unavailable = count(a.logs, UNAVAILABLE);
    redis.freeze();
    try {
      const first = await timed(() => request(a, 'HEAD', `/v2/frozen/app/blobs/${digest}`));
      assert.equal(first.value.status, 200);
      assert.ok(first.ms < 3000, `first HEAD took ${first.ms} ms`);
      // Suspended now: no request waits for Redis any more.
      const second = await timed(() => request(a, 'HEAD', `/v2/frozen/app/blobs/${digest}`));
      assert.equal(second.value.status, 200);
      assert.ok(second.ms < 500, `second HEAD took ${second.ms} ms`);
      assert.equal(count(a.logs, UNAVAILABLE), unavailable + 1);
      // A delete while Redis cannot take the clear: it succeeds, and the clear waits.
      const del = await timed(() => request(a, 'DELETE', `/v2/frozen/app/blobs/${digest}`));
      assert.equal(del.value.status, 202);
      assert.ok(del.ms < 1000, `DELETE took ${del.ms} ms`);
      // Longer than the delayed second clear, so only the replay can bring the clear to Redis.
      await new Promise((res) => setTimeout(res, 2500));
    } finally {
      redis.thaw();
    }
    // Instance b never saw the outage: it would answer 200 from the stale entry until a replays the clear.
    await eventually('the clear replayed', async () => (await r.sismember('repository::frozen/app::blobs', digest)) === 0);
    assert.equal(await r.exists(`repository::frozen/app::blobs::${digest}`), 0);
    assert.equal((await request(b, 'HEAD', `/v2/frozen/app/blobs/${digest}`)).status, 404);
    await eventually('a resumed', async () => count(a.logs, AVAILABLE_AGAIN) >= 2);
  });
});
