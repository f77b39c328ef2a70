// Distribution 3's `redis.addrs`: several addresses are a Redis Cluster, and with `mastername` they
// are Sentinels. Real servers from scripts/services/redis-start.sh (REDIS_MODE=cluster: 3 masters;
// REDIS_MODE=sentinel: a master and a sentinel), each of this test's own.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { pushBlob, pushImage, request } from '../server/helpers.js';
import { privateRedis, type PrivateRedis } from './redis-helpers.js';
import { redisConfigYaml, startRedisWharf, tempDataDir, type RedisWharf } from './redis-wharf.js';

const run = promisify(execFile);
const WHARF = path.resolve(import.meta.dirname, '../../../bin/wharf.js');
const OCTET = 'application/octet-stream';
const count = (logs: string[], re: RegExp) => logs.filter((l) => re.test(l)).length;

describe('redis cache on a Redis Cluster', { timeout: 120_000 }, () => {
  let redis: PrivateRedis;
  let cluster: Cluster;
  let dir: string;
  let a: RedisWharf;
  let b: RedisWharf;
  let lines: string[];

  before(async () => {
    redis = await privateRedis('cluster', 'cluster');
    const addrs = redis.vars.REDIS_ADDRS!.split(',');
    assert.equal(addrs.length, 3);
    cluster = new Cluster(addrs.map((x) => ({ host: '127.0.0.1', port: Number(x.split(':')[1]) })));
    dir = tempDataDir('cluster');
    lines = [`addrs: [${addrs.join(', ')}]`];
    a = await startRedisWharf(dir, lines);
    b = await startRedisWharf(dir, lines);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    cluster?.disconnect();
    await redis?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("stores Distribution's keys across the masters and answers HEAD from them", async () => {
    const digests: string[] = [];
    for (let i = 0; i < 12; i++) digests.push(await pushBlob(a, `spread/r${i}`, `blob ${i}`));
    for (const [i, d] of digests.entries()) {
      assert.deepEqual(await cluster.hgetall(`blobs::${d}`), { digest: d, size: String(`blob ${i}`.length), mediatype: OCTET });
      assert.equal(await cluster.sismember(`repository::spread/r${i}::blobs`, d), 1);
    }
    // The keys really are on several nodes.
    const perNode = await Promise.all(cluster.nodes('master').map((n) => n.dbsize()));
    assert.ok(perNode.filter((n) => n > 0).length >= 2, `keys per master: ${perNode.join(', ')}`);
    b.reads.reset();
    for (const [i, d] of digests.entries()) assert.equal((await request(b, 'HEAD', `/v2/spread/r${i}/blobs/${d}`)).status, 200);
    assert.equal(b.reads.count, 0);
  });

  it("online GC's forgetBlobs clears descriptors that live on different masters", async () => {
    const digests = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => pushBlob(a, `online/r${i}`, `online ${i}`)));
    const slots = new Set(await Promise.all(digests.map((d) => cluster.call('CLUSTER', 'KEYSLOT', `blobs::${d}`))));
    assert.ok(slots.size > 1);
    await a.started.registry.forgetBlobs(digests);
    for (const d of digests) assert.equal(await cluster.exists(`blobs::${d}`), 0, `blobs::${d}`);
    assert.equal(count(a.logs, /command refused/), 0, a.logs.join('\n'));
  });

  it('deletes and garbage-collect clear keys on every master', async () => {
    const image = await pushImage(a, 'gc/app', 'v1');
    const other = await pushImage(a, 'gone/app', 'v1');
    assert.equal((await request(a, 'DELETE', `/v2/gc/app/blobs/${image.configDigest}`)).status, 202);
    assert.equal(await cluster.sismember('repository::gc/app::blobs', image.configDigest), 0);
    assert.equal((await request(a, 'DELETE', '/v2/_wharf/repositories/gone/app')).status, 202);
    assert.equal(await cluster.exists('repository::gone/app::blobs'), 0);
    assert.equal((await request(a, 'DELETE', `/v2/gc/app/manifests/${image.digest}`)).status, 202);
    const config = path.join(dir, '..', `${path.basename(dir)}.yml`);
    fs.writeFileSync(config, redisConfigYaml(dir, lines));
    try {
      const gc = await run(process.execPath, [WHARF, 'garbage-collect', config]);
      assert.match(gc.stderr, /redis blob descriptor cache: removed [1-9]\d* blob descriptors/);
    } finally {
      fs.rmSync(config, { force: true });
    }
    for (const d of [image.layerDigest, image.configDigest, other.layerDigest, other.configDigest]) {
      assert.equal(await cluster.exists(`blobs::${d}`), 0, `blobs::${d}`);
    }
    assert.equal(await cluster.sismember('repository::gc/app::blobs', image.layerDigest), 0);
    for (const s of [a, b]) assert.equal((await request(s, 'HEAD', `/v2/gc/app/blobs/${image.layerDigest}`)).status, 404);
  });
});

describe('redis cache through Sentinel', { timeout: 120_000 }, () => {
  let redis: PrivateRedis;
  let dir: string;

  before(async () => {
    redis = await privateRedis('sentinel', 'sentinel');
    dir = tempDataDir('sentinel');
  });
  after(async () => {
    await redis?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('finds the master by name through the sentinel and caches there', async () => {
    const lines = [`addrs: [${redis.vars.REDIS_SENTINEL_ADDR}]`, `mastername: ${redis.vars.REDIS_MASTER_NAME}`, 'db: 5'];
    const a = await startRedisWharf(dir, lines);
    const b = await startRedisWharf(dir, lines);
    const master = redis.client(5);
    try {
      assert.match(a.logs.join('\n'), /master \\?"wharf\\?" via sentinels 127\.0\.0\.1:\d+/);
      const digest = await pushBlob(a, 'team/app', 'via sentinel');
      assert.deepEqual(await master.hgetall(`blobs::${digest}`), { digest, size: '12', mediatype: OCTET });
      b.reads.reset();
      assert.equal((await request(b, 'HEAD', `/v2/team/app/blobs/${digest}`)).status, 200);
      assert.equal(b.reads.count, 0);
      // A wrong master name is a start-up error naming the key.
      const err = await startRedisWharf(dir, [`addrs: [${redis.vars.REDIS_SENTINEL_ADDR}]`, 'mastername: nosuch', 'dialtimeout: 1s', 'readtimeout: 1s']).then(
        () => assert.fail('started'),
        (e: Error) => e,
      );
      assert.match(err.message, /^redis\.addrs: cannot use Redis at master "nosuch" via sentinels/);
    } finally {
      master.disconnect();
      await a.close();
      await b.close();
    }
  });
});
