// Expiry of cached content: the scheduler reads and writes Distribution's /scheduler-state.json (Go's
// nanosecond times included), expires what is due (also what fell due while stopped), survives
// restarts and a corrupt file; and the cache removes expired blobs and manifests, except bytes a local
// repository holds.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ENTRY_BLOB, ENTRY_MANIFEST, ExpiryScheduler } from '../../src/proxy/scheduler.js';
import { InMemoryDriver } from '../../src/storage/inmemory.js';
import { captureLog } from '../server/auth-fixtures.js';
import { ACCEPT_ALL, pushBlob, pushImage, request, sha256, storageRoot, type TestServer } from '../server/helpers.js';
import { eventually, removeDir, startCache, startUpstream, upstream, type CacheServer } from './helpers.js';

const D1 = sha256('one');
const D2 = sha256('two');
const STATE = '/scheduler-state.json';

function recorder() {
  const expired: string[] = [];
  return {
    expired,
    handlers: {
      blob: async (name: string, digest: string) => void expired.push(`blob ${name}@${digest}`),
      manifest: async (name: string, digest: string) => void expired.push(`manifest ${name}@${digest}`),
    },
  };
}

describe('expiry scheduler', () => {
  test('reads Distribution\'s state file, expires what is due, keeps the rest in the same format', async () => {
    const driver = new InMemoryDriver();
    const past = 'library/alpine@' + D1;
    const future = 'team/app@' + D2;
    // As docker-registry 2.8 writes it: RFC 3339 with nanoseconds and an offset.
    await driver.putContent(
      STATE,
      Buffer.from(
        JSON.stringify({
          [past]: { Key: past, ExpiryData: '2020-01-02T03:04:05.123456789+01:00', EntryType: 0 },
          [future]: { Key: future, ExpiryData: '2999-01-02T03:04:05.999999999Z', EntryType: 1 },
          broken: { Key: 'broken', ExpiryData: 'never', EntryType: 7 },
        }),
      ),
    );
    const r = recorder();
    const logs = captureLog('info');
    const s = new ExpiryScheduler(driver, r.handlers, logs.log, 50);
    await s.start();
    await eventually(() => r.expired.length === 1, 5_000, 'the due entry');
    assert.deepEqual(r.expired, [`blob library/alpine@${D1}`]);
    assert.match(logs.text(), /ignoring an expiry entry that cannot be read/);
    await s.stop();
    const saved = JSON.parse((await driver.getContent(STATE)).toString());
    assert.deepEqual(Object.keys(saved), [future]);
    assert.equal(saved[future].Key, future);
    assert.equal(saved[future].EntryType, ENTRY_MANIFEST);
    assert.equal(Date.parse(saved[future].ExpiryData), Date.parse('2999-01-02T03:04:05.999Z'));
  });

  test('entries are saved, survive a restart, expire on time, and a newer fetch pushes the time back', async () => {
    const driver = new InMemoryDriver();
    const log = captureLog('info').log;
    const r = recorder();
    let s = new ExpiryScheduler(driver, r.handlers, log, 30);
    await s.start();
    s.add('team/app', D1, ENTRY_BLOB, 60 * 60_000);
    s.add('team/app', D2, ENTRY_MANIFEST, 300);
    await eventually(async () => (await driver.getContent(STATE).catch(() => Buffer.from('{}'))).toString().includes(D2), 5_000, 'a save');
    await s.stop();
    s = new ExpiryScheduler(driver, r.handlers, log, 30);
    await s.start();
    assert.equal(s.size, 2);
    s.add('team/app', D2, ENTRY_MANIFEST, 1_000); // fetched again: expires later
    await new Promise((res) => setTimeout(res, 500));
    assert.deepEqual(r.expired, [], 'the later time stands');
    await eventually(() => r.expired.length === 1, 5_000, 'the expiry');
    assert.deepEqual(r.expired, [`manifest team/app@${D2}`]);
    assert.equal(s.size, 1);
    await s.stop();
    assert.deepEqual(Object.keys(JSON.parse((await driver.getContent(STATE)).toString())), [`team/app@${D1}`]);
  });

  test('a state file that is not JSON is reported, and replaced at the next save', async () => {
    const driver = new InMemoryDriver();
    await driver.putContent(STATE, Buffer.from('{"half'));
    const logs = captureLog('info');
    const s = new ExpiryScheduler(driver, recorder().handlers, logs.log, 30);
    await s.start();
    assert.match(logs.text(), /the expiry state is not JSON/);
    s.add('a/b', D1, ENTRY_BLOB, 60_000);
    await s.stop();
    assert.ok(JSON.parse((await driver.getContent(STATE)).toString())[`a/b@${D1}`]);
  });
});

describe('the cache expires what it fetched', { timeout: 120_000 }, () => {
  let origin: TestServer;
  let cache: CacheServer | undefined;
  let dir: string | undefined;
  const root = () => storageRoot(dir!);
  const blobData = (d: string) => path.join(root(), 'blobs', 'sha256', d.slice(7, 9), d.slice(7), 'data');
  const layerLink = (name: string, d: string) => path.join(root(), 'repositories', name, '_layers', 'sha256', d.slice(7), 'link');
  const revision = (name: string, d: string) => path.join(root(), 'repositories', name, '_manifests', 'revisions', 'sha256', d.slice(7), 'link');
  const state = () => JSON.parse(fs.readFileSync(path.join(dir!, 'scheduler-state.json'), 'utf8')) as Record<string, { EntryType: number }>;

  before(async () => {
    origin = await startUpstream();
  });
  after(async () => {
    await cache?.close();
    await origin?.close();
    removeDir(dir);
  });

  test('blobs and manifests go when their ttl is up, also across a restart; bytes a local repository holds stay', async () => {
    const img = await pushImage(origin, 'team/app', 'v1');
    const shared = Buffer.from(`shared ${Math.random()}`);
    const sharedDigest = await pushBlob(origin, 'team/app', shared);
    const ups = [upstream(origin.url, { prefix: 'hub', ttl: 1_500, key: 'proxy.upstreams[0]' })];
    cache = await startCache(ups, { saveEveryMs: 50 });
    dir = cache.dir;
    assert.equal((await request(cache, 'GET', '/v2/hub/team/app/manifests/v1', { headers: { Accept: ACCEPT_ALL } })).status, 200);
    for (const d of [img.configDigest, img.layerDigest, sharedDigest]) assert.equal((await request(cache, 'GET', `/v2/hub/team/app/blobs/${d}`)).status, 200);
    // A local repository with the same bytes: they cannot be fetched again for it, so they stay.
    await pushBlob(cache, 'mine/app', shared);
    await eventually(() => fs.existsSync(path.join(dir!, 'scheduler-state.json')) && Object.keys(state()).length === 4, 5_000, 'the saved state');
    assert.deepEqual(
      Object.entries(state()).map(([k, v]) => `${v.EntryType} ${k}`).sort(),
      [`0 hub/team/app@${img.configDigest}`, `0 hub/team/app@${img.layerDigest}`, `0 hub/team/app@${sharedDigest}`, `1 hub/team/app@${img.digest}`].sort(),
    );
    await cache.close();
    await new Promise((r) => setTimeout(r, 1_600)); // everything falls due while the cache is stopped
    cache = await startCache(ups, { dir, saveEveryMs: 50 });
    await eventually(() => !fs.existsSync(revision('hub/team/app', img.digest)) && !fs.existsSync(layerLink('hub/team/app', img.layerDigest)), 10_000, 'expiry at start-up');
    await eventually(() => Object.keys(state()).length === 0, 5_000, 'an empty saved state');
    assert.equal(fs.existsSync(blobData(img.layerDigest)), false, 'the layer\'s bytes are gone');
    assert.equal(fs.existsSync(blobData(img.configDigest)), false);
    assert.equal(fs.existsSync(layerLink('hub/team/app', sharedDigest)), false, 'the cached link is gone');
    assert.equal(fs.existsSync(blobData(sharedDigest)), true, 'bytes mine/app holds stay');
    assert.equal((await request(cache, 'GET', `/v2/mine/app/blobs/${sharedDigest}`)).status, 200);
    // Pulled again from the upstream on demand.
    const again = await request(cache, 'GET', `/v2/hub/team/app/blobs/${img.layerDigest}`);
    assert.equal(again.status, 200);
    assert.equal(sha256(again.body), img.layerDigest);
  });

  test('ttl 0: nothing is scheduled and no state file is written', async () => {
    await cache?.close();
    removeDir(dir);
    cache = await startCache([upstream(origin.url, { ttl: 0 })], { saveEveryMs: 20 });
    dir = cache.dir;
    assert.equal((await request(cache, 'GET', '/v2/team/app/manifests/v1', { headers: { Accept: ACCEPT_ALL } })).status, 200);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(cache.started.proxy!.scheduled, 0);
    assert.equal(fs.existsSync(path.join(dir, 'scheduler-state.json')), false);
  });
});
