// The pull-through cache when things go wrong: an upstream that sends the wrong bytes for a digest,
// too few bytes, garbage for a manifest, trickles, hangs or goes silent mid-body; clients that leave
// mid-stream; many clients asking for one blob at once. Whatever happens, a client never gets a body
// that looks whole but is not, and storage never shows a partial or unverified blob.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ACCEPT_ALL, assertError, pushBlob, request, sha256, storageRoot, type TestServer } from '../server/helpers.js';
import {
  eventually,
  filesUnder,
  removeDir,
  startCache,
  startFakeUpstream,
  startRecordingProxy,
  startUpstream,
  upstream,
  type CacheServer,
  type FakeUpstream,
} from './helpers.js';

type Route = (req: http.IncomingMessage, res: http.ServerResponse) => void;

interface RawResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body ended normally (false: the connection was cut). */
  complete: boolean;
  /** When the status line and headers arrived (Date.now()). */
  answeredAt: number;
}

/** GET on a fresh connection, noting whether the body ended or was cut; `onData` may destroy the request. */
function rawGet(port: number, p: string, onData?: (received: number, req: http.ClientRequest) => void): Promise<RawResult> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      const answeredAt = Date.now();
      const parts: Buffer[] = [];
      let received = 0;
      let settled = false;
      const done = (complete: boolean) => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), complete, answeredAt });
      };
      res.on('data', (c: Buffer) => {
        parts.push(c);
        received += c.length;
        onData?.(received, req);
      });
      res.on('end', () => done(res.complete));
      res.on('aborted', () => done(false));
      res.on('error', () => done(false));
      res.on('close', () => done(res.complete));
    });
    // Cut before the status line: no response at all.
    req.on('error', () => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), complete: false, answeredAt: Date.now() }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Send `data` as a 200 blob body in `pieces`, `pauseMs` apart. */
function trickle(res: http.ServerResponse, data: Buffer, pieces: number, pauseMs: number, length = data.length): void {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': length });
  const size = Math.ceil(data.length / pieces);
  void (async () => {
    for (let off = 0; off < data.length && !res.destroyed; off += size) {
      res.write(data.subarray(off, off + size));
      await sleep(pauseMs);
    }
    res.end();
  })();
}

describe('pull-through cache faults', { timeout: 120_000 }, () => {
  const routes = new Map<string, Route>();
  let fake: FakeUpstream;
  let cache: CacheServer;
  const blobFile = (digest: string) => path.join(storageRoot(cache.dir), 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data');
  const linkFile = (name: string, digest: string) => path.join(storageRoot(cache.dir), 'repositories', name, '_layers', 'sha256', digest.slice(7), 'link');
  const uploadsOf = (name: string) => filesUnder(path.join(storageRoot(cache.dir), 'repositories', name, '_uploads'));
  const gets = (p: string) => fake.requests.filter((r) => r.method === 'GET' && r.url === p).length;
  /** A blob route for a new random blob in `name`; returns the data, its digest and the upstream path. */
  const newBlob = (name: string, size: number, route: (data: Buffer) => Route) => {
    const data = randomBytes(size);
    const digest = sha256(data);
    const p = `/v2/${name}/blobs/${digest}`;
    routes.set(p, route(data));
    return { data, digest, path: p };
  };
  const nothingStored = async (name: string, digest: string) => {
    await eventually(() => uploadsOf(name).length === 0, 10_000, 'the upload to be removed');
    assert.equal(fs.existsSync(blobFile(digest)), false, 'no blob data');
    assert.equal(fs.existsSync(linkFile(name, digest)), false, 'no link');
  };

  before(async () => {
    fake = await startFakeUpstream((req, res) => {
      const route = routes.get(req.url ?? '');
      if (route) return route(req, res);
      res.writeHead(req.url === '/v2/' ? 200 : 404, { 'Content-Type': 'application/json' });
      res.end(req.url === '/v2/' ? '{}' : '{"errors":[{"code":"NOT_FOUND","message":"no such thing"}]}');
    });
    cache = await startCache([upstream(fake.url, { cacheWriteTimeout: 400 })], { timeouts: { responseMs: 1_000, idleMs: 1_000 } });
  });
  after(async () => {
    await cache?.close();
    await fake?.close();
    removeDir(cache?.dir);
  });

  test('wrong bytes for a digest: the client\'s stream is cut before its end, nothing is stored, the next pull asks again', async () => {
    const b = newBlob('t/wrong', 2_000_000, (data) => (_req, res) => trickle(res, Buffer.from(data).fill(7, 1000, 2000), 8, 5));
    const got = await rawGet(cache.port, b.path);
    assert.equal(got.status, 200);
    assert.equal(Number(got.headers['content-length']), b.data.length);
    assert.equal(got.complete, false, 'the connection is cut');
    assert.ok(got.body.length > 0, 'bytes flowed before the end');
    assert.ok(got.body.length < b.data.length, `the client got ${got.body.length} of ${b.data.length} bytes: never all of them`);
    await nothingStored('t/wrong', b.digest);
    await rawGet(cache.port, b.path);
    assert.equal(gets(b.path), 2, 'nothing was cached: asked again');
  });

  test('fewer bytes than announced (the upstream closes early): cut, nothing stored', async () => {
    const b = newBlob('t/short', 200_000, (data) => (_req, res) => {
      res.writeHead(200, { 'Content-Length': data.length });
      res.write(data.subarray(0, 100_000), () => setTimeout(() => res.destroy(), 20));
    });
    const got = await rawGet(cache.port, b.path);
    assert.equal(got.complete, false);
    assert.ok(got.body.length < b.data.length);
    await nothingStored('t/short', b.digest);
  });

  test('a manifest whose bytes do not hash to the digest, or that is not a manifest: 502, nothing stored', async () => {
    const good = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('c'), size: 1 }, layers: [] }));
    const digest = sha256(good);
    routes.set(`/v2/t/man/manifests/${digest}`, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' });
      res.end(Buffer.concat([good, Buffer.from(' ')]));
    });
    const res = await request(cache, 'GET', `/v2/t/man/manifests/${digest}`, { headers: { Accept: ACCEPT_ALL } });
    assertError(res, 502, 'UNKNOWN');
    assert.match(res.json().errors[0].message, /sent a manifest whose digest is sha256:[0-9a-f]{64}, not sha256/);
    const junk = Buffer.from('this is not json');
    routes.set(`/v2/t/man/manifests/${sha256(junk)}`, (_req, res) => res.end(junk));
    const bad = await request(cache, 'GET', `/v2/t/man/manifests/${sha256(junk)}`, { headers: { Accept: ACCEPT_ALL } });
    assertError(bad, 502, 'UNKNOWN');
    assert.match(bad.json().errors[0].message, /sent an invalid manifest/);
    // A tag whose HEAD names a digest the GET does not deliver.
    routes.set('/v2/t/man/manifests/v1', (_req, res) => {
      res.writeHead(200, { 'Docker-Content-Digest': digest, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': good.length });
      res.end();
    });
    assertError(await request(cache, 'GET', '/v2/t/man/manifests/v1', { headers: { Accept: ACCEPT_ALL } }), 502, 'UNKNOWN');
    assert.deepEqual(filesUnder(path.join(storageRoot(cache.dir), 'repositories', 't', 'man')), [], 'no revision, no tag');
  });

  test('a slow upstream: the blob trickles through whole, and cached content is served meanwhile', async () => {
    const cached = newBlob('t/slow', 10_000, (data) => (_req, res) => trickle(res, data, 1, 0));
    assert.equal(sha256((await rawGet(cache.port, cached.path)).body), cached.digest);
    const b = newBlob('t/slow', 400_000, (data) => (_req, res) => trickle(res, data, 16, 80));
    const started = Date.now();
    const slow = rawGet(cache.port, b.path);
    await sleep(200);
    const t0 = Date.now();
    const quick = await rawGet(cache.port, cached.path);
    assert.equal(sha256(quick.body), cached.digest);
    assert.ok(Date.now() - t0 < 1_000, 'a cached blob is not held up by the slow download');
    const got = await slow;
    assert.ok(Date.now() - started >= 1_000, 'it did trickle');
    assert.equal(got.complete, true);
    assert.equal(sha256(got.body), b.digest);
    await eventually(() => fs.existsSync(blobFile(b.digest)), 10_000, 'the commit');
  });

  test('an upstream that does not answer, or goes silent mid-body: the cached tag is served, the rest is 503 or a cut stream', async () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('c'), size: 1 }, layers: [] }));
    const digest = sha256(manifest);
    const serve: Route = (req, res) => {
      res.writeHead(200, { 'Docker-Content-Digest': digest, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': manifest.length });
      res.end(req.method === 'HEAD' ? undefined : manifest);
    };
    routes.set('/v2/t/hang/manifests/v1', serve);
    routes.set(`/v2/t/hang/manifests/${digest}`, serve);
    assert.equal((await request(cache, 'GET', '/v2/t/hang/manifests/v1', { headers: { Accept: ACCEPT_ALL } })).status, 200);
    const hang: Route = () => undefined; // accepts, never answers
    routes.set('/v2/t/hang/manifests/v1', hang);
    let t0 = Date.now();
    const res = await request(cache, 'GET', '/v2/t/hang/manifests/v1', { headers: { Accept: ACCEPT_ALL } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['docker-content-digest'], digest);
    assert.ok(Date.now() - t0 < 5_000, 'the tag lookup gave up after the response timeout');
    const b = newBlob('t/hang', 1000, () => hang);
    t0 = Date.now();
    const unavailable = await request(cache, 'GET', b.path);
    assertError(unavailable, 503, 'UNAVAILABLE');
    assert.match(unavailable.json().errors[0].message, /did not answer within 1000 ms/);
    const silent = newBlob('t/hang', 200_000, (data) => (_req, res) => {
      res.writeHead(200, { 'Content-Length': data.length });
      res.write(data.subarray(0, 50_000)); // then nothing, the connection open
    });
    const got = await rawGet(cache.port, silent.path);
    assert.equal(got.status, 200, 'status and headers go out before the body');
    assert.equal(got.complete, false, 'cut after the idle timeout');
    await nothingStored('t/hang', silent.digest);
  });

  test('a client that leaves mid-stream: the download completes the cache, later pulls need no upstream', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const b = newBlob('t/leave', 3_000_000, (data) => (_req, res) => {
      res.writeHead(200, { 'Content-Length': data.length });
      res.write(data.subarray(0, 1_500_000));
      void released.then(() => res.end(data.subarray(1_500_000)));
    });
    const got = await rawGet(cache.port, b.path, (received, req) => {
      if (received > 50_000) req.destroy();
    });
    assert.equal(got.complete, false);
    await sleep(100);
    release();
    await eventually(() => fs.existsSync(blobFile(b.digest)) && fs.existsSync(linkFile('t/leave', b.digest)), 10_000, 'the blob in the cache');
    assert.equal(sha256(fs.readFileSync(blobFile(b.digest))), b.digest, 'complete and verified');
    routes.delete(b.path);
    const again = await rawGet(cache.port, b.path);
    assert.equal(sha256(again.body), b.digest);
    assert.equal(gets(b.path), 1);
  });

  test('a client that leaves and a download that then breaks, or outlives cachewritetimeout: nothing visible', async () => {
    const broken = newBlob('t/leave2', 3_000_000, (data) => (_req, res) => {
      res.writeHead(200, { 'Content-Length': data.length });
      res.write(data.subarray(0, 1_500_000), () => setTimeout(() => res.destroy(), 200));
    });
    await rawGet(cache.port, broken.path, (received, req) => req.destroy());
    await nothingStored('t/leave2', broken.digest);
    // Nobody waits any more and the upstream is slow (but never idle for 1 s): abandoned after 400 ms.
    const slow = newBlob('t/leave2', 3_000_000, (data) => (_req, res) => trickle(res, data, 10, 150));
    await rawGet(cache.port, slow.path, (received, req) => req.destroy());
    await sleep(2_000);
    await nothingStored('t/leave2', slow.digest);
  });

  test('clients that come too late for the stream wait for the cache and get the same bytes', async () => {
    const b = newBlob('t/late', 2_000_000, (data) => (_req, res) => trickle(res, data, 8, 100));
    let firstDone = 0;
    const first = rawGet(cache.port, b.path).then((r) => ((firstDone = Date.now()), r));
    await sleep(350); // bytes are flowing by now
    const late = await rawGet(cache.port, b.path);
    assert.ok(firstDone > 0 && late.answeredAt >= firstDone, 'the late client was answered from storage, once the stream had ended');
    assert.equal(sha256(late.body), b.digest);
    assert.equal(sha256((await first).body), b.digest);
    assert.equal(gets(b.path), 1, 'one download');
  });
});

describe('concurrent pulls of one blob', { timeout: 120_000 }, () => {
  let origin: TestServer;
  let cache: CacheServer;

  before(async () => {
    origin = await startUpstream();
  });
  after(async () => {
    await cache?.close();
    await origin?.close();
    removeDir(cache?.dir);
  });

  test('ten clients at once: one upstream GET (counted by a recording proxy), ten verified bodies', async () => {
    const recorder = await startRecordingProxy(origin.port);
    try {
      cache = await startCache([upstream(recorder.url)]);
      const data = randomBytes(8 * 1024 * 1024);
      const digest = await pushBlob(origin, 'team/big', data);
      const bodies = await Promise.all(Array.from({ length: 10 }, () => rawGet(cache.port, `/v2/team/big/blobs/${digest}`)));
      for (const b of bodies) {
        assert.equal(b.complete, true);
        assert.equal(sha256(b.body), digest);
      }
      assert.equal(recorder.requests.filter((r) => r.method === 'GET' && r.url === `/v2/team/big/blobs/${digest}`).length, 1);
    } finally {
      await recorder.close();
    }
  });
});
