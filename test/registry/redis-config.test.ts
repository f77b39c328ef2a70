// The `redis` section: validation errors naming the key, the mapping to ioredis, and start-up
// failures (unreachable server, wrong password, missing database, unreadable TLS files) with
// clear messages, from the API and from `wharf serve` / `wharf garbage-collect`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { redisConnection } from '../../src/config/redis.js';
import { ioredisOptions } from '../../src/registry/redis-client.js';
import { errorOf, parse } from '../config/helpers.js';
import { freePort, privateRedis, type PrivateRedis } from './redis-helpers.js';
import { redisConfigYaml, startRedisWharf, tempDataDir } from './redis-wharf.js';

const run = promisify(execFile);
const WHARF = path.resolve(import.meta.dirname, '../../../bin/wharf.js');
const BASE = 'version: 0.1\nstorage:\n  inmemory:\n';
const withCache = (redis: string) => `${BASE}  cache:\n    blobdescriptor: redis\n${redis}`;

describe('redis configuration', () => {
  it('names the key of every invalid setting', () => {
    const cases: [string, RegExp][] = [
      [withCache(''), /storage\.cache\.blobdescriptor \(REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR\): the redis cache needs the redis section: set redis\.addr \(or redis\.addrs\)/],
      [withCache('redis:\n  addr: localhost\n'), /redis\.addr \(REGISTRY_REDIS_ADDR\): expected host:port such as "localhost:6379" \(IPv6: "\[::1\]:6379"\), got "localhost"/],
      [withCache('redis:\n  addr: h:70000\n'), /redis\.addr .*expected host:port/],
      [withCache('redis:\n  addrs: [a:1, "b"]\n'), /redis\.addrs\[1\] \(REGISTRY_REDIS_ADDRS_1\): expected host:port/],
      [withCache('redis:\n  addr: a:1\n  addrs: [b:2]\n'), /redis\.addrs .*set either redis\.addr \(Distribution 2\.8\) or redis\.addrs \(Distribution 3\), not both/],
      [withCache('redis:\n  addrs: [a:1, b:2]\n  db: 3\n'), /redis\.db \(REGISTRY_REDIS_DB\): Redis Cluster has only database 0 \(redis\.addrs lists 2 nodes\), got 3/],
      [withCache('redis:\n  addr: a:1\n  tls:\n    certificate: /c.pem\n'), /redis\.tls\.key .*needs both redis\.tls\.certificate and redis\.tls\.key/],
      [withCache('redis:\n  addr: a:1\n  protocol: 4\n'), /redis\.protocol .*expected 2 or 3, got 4/],
      [withCache('redis:\n  addr: a:1\n  readtimeout: soon\n'), /redis\.readtimeout \(REGISTRY_REDIS_READTIMEOUT\): expected a duration/],
    ];
    for (const [yaml, re] of cases) assert.match(errorOf(() => parse(yaml)), re, yaml);
    // Environment overrides are checked the same way.
    assert.match(errorOf(() => parse(withCache(''), { REGISTRY_REDIS_ADDR: 'nope' })), /redis\.addr \(REGISTRY_REDIS_ADDR\): expected host:port/);
  });

  it("maps Distribution 2.8's and 3's keys to a single server, a cluster or sentinels", () => {
    const conn = (redis: string) => redisConnection(parse(withCache(redis)).config.redis)!;
    const single = conn('redis:\n  addr: "[::1]:6380"\n  password: pw\n  db: 4\n  dialtimeout: 10ms\n  readtimeout: 20ms\n  writetimeout: 50ms\n' +
      '  pool:\n    maxidle: 16\n    maxactive: 64\n    idletimeout: 300s\n');
    assert.deepEqual([single.mode, single.nodes, single.db, single.password], ['standalone', [{ host: '::1', port: 6380 }], 4, 'pw']);
    const opts = ioredisOptions(single);
    assert.deepEqual(
      [opts.connectTimeout, opts.commandTimeout, opts.db, opts.password, opts.enableOfflineQueue, opts.tls],
      [10, 50, 4, 'pw', false, undefined],
    );
    const defaults = ioredisOptions(conn('redis:\n  addrs: [r:6379]\n  username: u\n  clientname: wharf-1\n'));
    assert.deepEqual([defaults.connectTimeout, defaults.commandTimeout, defaults.username, defaults.connectionName], [5000, 3000, 'u', 'wharf-1']);
    const cluster = conn('redis:\n  addrs: [a:7000, b:7001, c:7002]\n  readonly: true\n');
    assert.deepEqual([cluster.mode, cluster.nodes.length, cluster.clusterReads], ['cluster', 3, 'slave']);
    const sentinel = conn('redis:\n  addrs: [s1:26379, s2:26379]\n  mastername: mymaster\n  sentinelpassword: sp\n  db: 2\n');
    assert.deepEqual([sentinel.mode, sentinel.masterName, sentinel.sentinelPassword, sentinel.db], ['sentinel', 'mymaster', 'sp', 2]);
    // TLS is on with tls.enabled (2.8-era documents) or any of 3.x's files (rootcas; 3.0 called it clientcas).
    assert.deepEqual(conn('redis:\n  addr: a:1\n  tls:\n    enabled: true\n').tls, { certificate: undefined, key: undefined, ca: [] });
    assert.deepEqual(conn('redis:\n  addr: a:1\n  tls:\n    clientcas: [/ca.pem]\n').tls?.ca, ['/ca.pem']);
    // Configured without the cache: accepted (Distribution uses it for nothing else either), with a warning.
    const unused = parse(`${BASE}redis:\n  addr: a:1\n`);
    assert.deepEqual(unused.warnings, ['redis: configured but not used (only storage.cache.blobdescriptor: redis uses it)']);
  });

  describe('start-up', { timeout: 120_000 }, () => {
    let redis: PrivateRedis;
    let dir: string;
    before(async () => {
      redis = await privateRedis('config');
      dir = tempDataDir('config');
      const admin = redis.client(0);
      await admin.call('ACL', 'SETUSER', 'wharf', 'on', '>wharf-pw', '~*', '+@all');
      await admin.call('ACL', 'SETUSER', 'default', 'on', '>default-pw');
      admin.disconnect();
    });
    after(async () => {
      await redis?.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('fails with a message naming the key: unreachable, wrong password, missing database, unreadable TLS file', async () => {
      const closed = await freePort();
      const failure = async (lines: string[]) => {
        const err = await startRedisWharf(dir, lines).then(() => assert.fail('started'), (e: Error) => e);
        return err.message;
      };
      assert.match(await failure([`addr: 127.0.0.1:${closed}`]), new RegExp(`^redis\\.addr: cannot use Redis at 127\\.0\\.0\\.1:${closed}: connect ECONNREFUSED .*storage\\.cache\\.blobdescriptor is redis`));
      assert.match(await failure([`addr: ${redis.addr}`, 'password: wrong']), /^redis\.addr: cannot use Redis at .*WRONGPASS/);
      assert.match(await failure([`addrs: [${redis.addr}]`, 'username: wharf', 'password: default-pw']), /^redis\.addrs: cannot use Redis .*WRONGPASS/);
      assert.match(await failure([`addr: ${redis.addr}`, 'password: default-pw', 'db: 99']), /^redis\.addr: cannot use Redis at .* db 99: ERR DB index is out of range/);
      assert.match(await failure([`addr: ${redis.addr}`, 'tls:', '  certificate: /nonexistent/c.pem', '  key: /nonexistent/k.pem']), /^redis\.tls\.certificate: cannot read \/nonexistent\/c\.pem/);
    });

    it('connects with password (2.8) and with username and password (ACL, Distribution 3)', async () => {
      for (const lines of [[`addr: ${redis.addr}`, 'password: default-pw', 'db: 3'], [`addrs: [${redis.addr}]`, 'username: wharf', 'password: wharf-pw']]) {
        const s = await startRedisWharf(dir, lines);
        await s.close();
        assert.match(s.logs.join('\n'), /blob descriptor cache: redis/);
      }
    });

    it('wharf serve exits 1 with the message; wharf garbage-collect deletes nothing when Redis cannot be used', async () => {
      const closed = await freePort();
      const config = path.join(dir, 'closed.yml');
      fs.writeFileSync(config, redisConfigYaml(path.join(dir, 'data'), [`addr: 127.0.0.1:${closed}`]));
      const serve = await run(process.execPath, [WHARF, 'serve', config], { timeout: 30_000 }).then(() => assert.fail('served'), (e) => e);
      assert.equal(serve.code, 1);
      assert.match(serve.stderr, new RegExp(`wharf: redis\\.addr: cannot use Redis at 127\\.0\\.0\\.1:${closed}`));
      // An unreferenced blob that GC would delete.
      const blob = path.join(dir, 'data/docker/registry/v2/blobs/sha256/ab', 'ab'.padEnd(64, '0'));
      fs.mkdirSync(blob, { recursive: true });
      fs.writeFileSync(path.join(blob, 'data'), 'x');
      const gc = await run(process.execPath, [WHARF, 'garbage-collect', config], { timeout: 30_000 }).then(() => assert.fail('collected'), (e) => e);
      assert.equal(gc.code, 1);
      assert.match(gc.stderr, /redis\.addr: cannot use Redis/);
      assert.ok(fs.existsSync(path.join(blob, 'data')), 'GC deleted a blob without clearing the cache');
    });
  });
});
