// Blob uploads: end-4a/4b (POST, monolithic POST), end-11 (mount), end-5 (PATCH),
// end-6 (PUT), end-13 (status), DELETE; restarts and broken connections.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  assertAlive,
  assertError,
  hexOf,
  listOnlyFiles,
  locationPath,
  pushBlob,
  randomDigest,
  request,
  sha256,
  startServer,
  startUpload,
  storageRoot,
  withQuery,
  type TestServer,
} from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(async () => {
  await s.close();
});

function blobDir(server: TestServer, digest: string): string {
  const hex = hexOf(digest);
  return path.join(storageRoot(server.dir!), 'blobs', 'sha256', hex.slice(0, 2), hex);
}

function uploadsOf(server: TestServer, name: string): string[] {
  return listOnlyFiles(path.join(storageRoot(server.dir!), 'repositories', name, '_uploads'));
}

describe('POST /v2/<name>/blobs/uploads/ (end-4a)', () => {
  it('202 with Location, Range 0-0, Docker-Upload-UUID and no body', async () => {
    const res = await request(s, 'POST', '/v2/up/a/blobs/uploads/');
    assert.equal(res.status, 202);
    const id = String(res.headers['docker-upload-uuid']);
    assert.match(id, /^[A-Za-z0-9_-]+$/);
    const loc = String(res.headers.location);
    assert.match(loc, /^http:\/\/127\.0\.0\.1:\d+\/v2\/up\/a\/blobs\/uploads\//);
    assert.ok(loc.includes(id), 'Location names the upload id');
    assert.equal(res.headers.range, '0-0');
    assert.equal(res.headers['content-length'], '0');
    assert.equal(res.body.length, 0);
    // The upload exists on disk in Distribution's layout.
    assert.ok(fs.existsSync(path.join(storageRoot(s.dir!), 'repositories/up/a/_uploads', id, 'startedat')));
  });

  it('also without the trailing slash', async () => {
    assert.equal((await request(s, 'POST', '/v2/up/a/blobs/uploads')).status, 202);
  });

  it('two POSTs give two different uploads', async () => {
    const a = await startUpload(s, 'up/a');
    const b = await startUpload(s, 'up/a');
    assert.notEqual(a.id, b.id);
  });
});

describe('monolithic POST ?digest= (end-4b)', () => {
  it('201 with Location of the blob and Docker-Content-Digest', async () => {
    const data = randomBytes(300);
    const digest = sha256(data);
    const res = await request(s, 'POST', `/v2/mono/blobs/uploads/?digest=${digest}`, {
      body: data,
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers['docker-content-digest'], digest);
    assert.match(String(res.headers.location), new RegExp(`/v2/mono/blobs/${digest}$`));
    const get = await request(s, 'GET', locationPath(res));
    assert.deepEqual(get.body, data);
    assert.deepEqual(uploadsOf(s, 'mono'), [], 'no upload left behind');
  });

  it('wrong digest → 400 DIGEST_INVALID, nothing stored', async () => {
    const data = Buffer.from('monolithic mismatch');
    const claimed = randomDigest();
    const before = listOnlyFiles(s.dir!);
    const res = await request(s, 'POST', `/v2/mono/blobs/uploads/?digest=${claimed}`, { body: data });
    assertError(res, 400, 'DIGEST_INVALID');
    assert.deepEqual(listOnlyFiles(s.dir!), before);
    assert.ok(!fs.existsSync(blobDir(s, claimed)));
    assert.ok(!fs.existsSync(blobDir(s, sha256(data))));
    await assertAlive(s);
  });

  it('malformed digest → 400 DIGEST_INVALID before anything is created', async () => {
    const before = listOnlyFiles(s.dir!);
    for (const bad of ['sha256:abc', 'sha256:' + 'g'.repeat(64), 'md5:' + 'a'.repeat(32), 'nocolon', 'sha256:' + 'A'.repeat(64)]) {
      const res = await request(s, 'POST', `/v2/mono/blobs/uploads/?digest=${encodeURIComponent(bad)}`, { body: 'x' });
      assertError(res, 400, 'DIGEST_INVALID');
    }
    assert.deepEqual(listOnlyFiles(s.dir!), before);
  });
});

describe('cross-repository mount (end-11)', () => {
  let digest: string;
  before(async () => {
    digest = await pushBlob(s, 'mount/src', 'mountable content');
  });

  it('201 with Location and Docker-Content-Digest when the source repo has the blob', async () => {
    const res = await request(s, 'POST', `/v2/mount/dst/blobs/uploads/?mount=${digest}&from=mount/src`);
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers['docker-content-digest'], digest);
    assert.match(String(res.headers.location), new RegExp(`/v2/mount/dst/blobs/${digest}$`));
    const get = await request(s, 'GET', `/v2/mount/dst/blobs/${digest}`);
    assert.equal(get.status, 200);
    assert.equal(get.text, 'mountable content');
    assert.deepEqual(uploadsOf(s, 'mount/dst'), []);
  });

  it('202 (a new upload) when the source repo does not have it', async () => {
    const res = await request(s, 'POST', `/v2/mount/dst2/blobs/uploads/?mount=${randomDigest()}&from=mount/src`);
    assert.equal(res.status, 202, res.text);
    assert.ok(res.headers['docker-upload-uuid']);
    assert.equal(res.headers.range, '0-0');
    // The fallback upload works as any other.
    const put = await request(s, 'PUT', withQuery(locationPath(res), `digest=${sha256('after fallback')}`), { body: 'after fallback' });
    assert.equal(put.status, 201, put.text);
  });

  it('202 when the blob exists only in a repo that was not named (no leak across repos)', async () => {
    const res = await request(s, 'POST', `/v2/mount/dst3/blobs/uploads/?mount=${digest}&from=mount/other`);
    assert.equal(res.status, 202);
    assertError(await request(s, 'GET', `/v2/mount/dst3/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  });

  it('202 with mount and no from (or an empty from)', async () => {
    for (const q of [`mount=${digest}`, `mount=${digest}&from=`]) {
      const res = await request(s, 'POST', `/v2/mount/dst4/blobs/uploads/?${q}`);
      assert.equal(res.status, 202, q);
      assert.ok(res.headers['docker-upload-uuid']);
    }
    assertError(await request(s, 'GET', `/v2/mount/dst4/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  });

  it('an invalid from name → 400 NAME_INVALID; a malformed mount digest → 400 DIGEST_INVALID', async () => {
    assertError(await request(s, 'POST', `/v2/mount/dst5/blobs/uploads/?mount=${digest}&from=Bad/Name`), 400, 'NAME_INVALID');
    assertError(await request(s, 'POST', `/v2/mount/dst5/blobs/uploads/?mount=sha256:zz&from=mount/src`), 400, 'DIGEST_INVALID');
    assert.ok(!fs.existsSync(path.join(storageRoot(s.dir!), 'repositories/mount/dst5')));
  });
});

describe('PATCH chunks (end-5) and PUT (end-6)', () => {
  const data = randomBytes(3000);
  const digest = sha256(data);

  it('chunks with Content-Range: each answers 202, Location, Range 0-<end>, Docker-Upload-UUID', async () => {
    const up = await startUpload(s, 'chunks/a');
    let loc = up.location;
    for (const [start, end] of [
      [0, 999],
      [1000, 1999],
      [2000, 2999],
    ] as const) {
      const res = await request(s, 'PATCH', loc, {
        body: data.subarray(start, end + 1),
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${end}` },
      });
      assert.equal(res.status, 202, res.text);
      assert.equal(res.headers.range, `0-${end}`);
      assert.equal(res.headers['docker-upload-uuid'], up.id);
      assert.equal(res.headers['content-length'], '0');
      loc = locationPath(res);
    }
    const put = await request(s, 'PUT', withQuery(loc, `digest=${digest}`));
    assert.equal(put.status, 201, put.text);
    assert.equal(put.headers['docker-content-digest'], digest);
    assert.match(String(put.headers.location), new RegExp(`/v2/chunks/a/blobs/${digest}$`));
    assert.deepEqual((await request(s, 'GET', `/v2/chunks/a/blobs/${digest}`)).body, data);
    assert.deepEqual(uploadsOf(s, 'chunks/a'), []);
    // The upload is finished: its URL is gone.
    assertError(await request(s, 'GET', loc), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('chunks without Content-Range (streamed appends), then PUT with a final chunk', async () => {
    const up = await startUpload(s, 'chunks/b');
    const r1 = await request(s, 'PATCH', up.location, { body: data.subarray(0, 1500) });
    assert.equal(r1.status, 202);
    assert.equal(r1.headers.range, '0-1499');
    const r2 = await request(s, 'PATCH', locationPath(r1), { body: data.subarray(1500, 2500) });
    assert.equal(r2.headers.range, '0-2499');
    const put = await request(s, 'PUT', withQuery(locationPath(r2), `digest=${digest}`), {
      body: data.subarray(2500),
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.headers['docker-content-digest'], digest);
    assert.deepEqual((await request(s, 'GET', `/v2/chunks/b/blobs/${digest}`)).body, data);
  });

  it('chunked transfer encoding (no Content-Length) for PATCH and for the final PUT', async () => {
    const up = await startUpload(s, 'chunks/c');
    const r1 = await request(s, 'PATCH', up.location, { chunks: [data.subarray(0, 10), data.subarray(10, 1000), data.subarray(1000, 2000)] });
    assert.equal(r1.status, 202, r1.text);
    assert.equal(r1.headers.range, '0-1999');
    const put = await request(s, 'PUT', withQuery(locationPath(r1), `digest=${digest}`), { chunks: [data.subarray(2000, 2001), data.subarray(2001)] });
    assert.equal(put.status, 201, put.text);
    assert.deepEqual((await request(s, 'GET', `/v2/chunks/c/blobs/${digest}`)).body, data);
  });

  it('a whole blob in one PUT (POST, then PUT ?digest= with the body)', async () => {
    const up = await startUpload(s, 'chunks/d');
    const put = await request(s, 'PUT', withQuery(up.location, `digest=${digest}`), { body: data });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.headers['docker-content-digest'], digest);
  });

  it('an empty blob: POST then PUT ?digest=<sha256 of nothing> with no body', async () => {
    const up = await startUpload(s, 'chunks/e');
    const empty = sha256('');
    const put = await request(s, 'PUT', withQuery(up.location, `digest=${empty}`));
    assert.equal(put.status, 201, put.text);
    const get = await request(s, 'GET', `/v2/chunks/e/blobs/${empty}`);
    assert.equal(get.status, 200);
    assert.equal(get.body.length, 0);
  });

  it('a blob that already exists globally is linked, not rewritten', async () => {
    const up = await startUpload(s, 'chunks/f');
    const put = await request(s, 'PUT', withQuery(up.location, `digest=${digest}`), { body: data });
    assert.equal(put.status, 201);
    assert.deepEqual((await request(s, 'GET', `/v2/chunks/f/blobs/${digest}`)).body, data);
    assert.deepEqual(uploadsOf(s, 'chunks/f'), []);
  });

  it('out-of-order Content-Range → 416 RANGE_INVALID, and the upload is unharmed', async () => {
    const up = await startUpload(s, 'order/a');
    const r1 = await request(s, 'PATCH', up.location, { body: data.subarray(0, 1000), headers: { 'Content-Range': '0-999' } });
    assert.equal(r1.status, 202);
    const loc = locationPath(r1);
    for (const range of ['0-999', '500-1499', '1001-2000', '2000-2999']) {
      const [a, b] = range.split('-').map(Number) as [number, number];
      const res = await request(s, 'PATCH', loc, { body: data.subarray(a, b + 1), headers: { 'Content-Range': range } });
      assertError(res, 416, 'RANGE_INVALID');
    }
    const status = await request(s, 'GET', loc);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, '0-999');
    const r2 = await request(s, 'PATCH', loc, { body: data.subarray(1000), headers: { 'Content-Range': '1000-2999' } });
    assert.equal(r2.status, 202, r2.text);
    const put = await request(s, 'PUT', withQuery(locationPath(r2), `digest=${digest}`));
    assert.equal(put.status, 201);
    await assertAlive(s);
  });

  it('an out-of-order final chunk on PUT → 416 RANGE_INVALID; the upload survives and can be finished', async () => {
    const up = await startUpload(s, 'order/put');
    const r1 = await request(s, 'PATCH', up.location, { body: data.subarray(0, 1000), headers: { 'Content-Range': '0-999' } });
    assert.equal(r1.status, 202);
    const loc = locationPath(r1);
    // As the OCI conformance suite does it: the chunk from the start again, sent as the closing PUT.
    const bad = await request(s, 'PUT', withQuery(loc, `digest=${digest}`), {
      body: data.subarray(0, 1000),
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-999' },
    });
    assertError(bad, 416, 'RANGE_INVALID');
    const status = await request(s, 'GET', loc);
    assert.equal(status.status, 204, status.text);
    assert.equal(status.headers.range, '0-999');
    assertError(
      await request(s, 'PUT', withQuery(loc, `digest=${digest}`), { body: data.subarray(1000, 1500), headers: { 'Content-Range': 'x' } }),
      416,
      'RANGE_INVALID',
    );
    assertError(
      await request(s, 'PUT', withQuery(loc, `digest=${digest}`), { body: data.subarray(1000), headers: { 'Content-Range': '1000-1999' } }),
      400,
      'SIZE_INVALID',
    );
    assert.equal((await request(s, 'GET', loc)).headers.range, '0-999');
    const put = await request(s, 'PUT', withQuery(loc, `digest=${digest}`), {
      body: data.subarray(1000),
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '1000-2999' },
    });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.headers['docker-content-digest'], digest);
    assert.deepEqual((await request(s, 'GET', `/v2/order/put/blobs/${digest}`)).body, data);
  });

  it('the first chunk must start at 0', async () => {
    const up = await startUpload(s, 'order/b');
    assertError(await request(s, 'PATCH', up.location, { body: 'abc', headers: { 'Content-Range': '1-3' } }), 416, 'RANGE_INVALID');
    assert.equal((await request(s, 'GET', up.location)).headers.range, '0-0');
  });

  it('malformed Content-Range → 416 RANGE_INVALID (end before start too)', async () => {
    const up = await startUpload(s, 'order/c');
    for (const range of ['abc', '0-', '-5', 'bytes */3', '5-2', '0-1-2', 'bytes=0-x']) {
      const res = await request(s, 'PATCH', up.location, { body: 'abc', headers: { 'Content-Range': range } });
      assertError(res, 416, 'RANGE_INVALID');
    }
    assert.equal((await request(s, 'GET', up.location)).headers.range, '0-0', 'nothing was appended');
    await assertAlive(s);
  });

  it('"bytes=" and "bytes " prefixes on Content-Range are tolerated', async () => {
    const up = await startUpload(s, 'order/d');
    const r1 = await request(s, 'PATCH', up.location, { body: 'abc', headers: { 'Content-Range': 'bytes=0-2' } });
    assert.equal(r1.status, 202, r1.text);
    const r2 = await request(s, 'PATCH', locationPath(r1), { body: 'def', headers: { 'Content-Range': 'bytes 3-5' } });
    assert.equal(r2.status, 202, r2.text);
    assert.equal(r2.headers.range, '0-5');
  });

  it('Content-Range that disagrees with Content-Length → 400 SIZE_INVALID, nothing appended', async () => {
    const up = await startUpload(s, 'size/a');
    const res = await request(s, 'PATCH', up.location, { body: 'abcd', headers: { 'Content-Range': '0-9' } });
    assertError(res, 400, 'SIZE_INVALID');
    assert.equal((await request(s, 'GET', up.location)).headers.range, '0-0');
    await assertAlive(s);
  });

  it('a non-numeric Content-Length → 400', async () => {
    const up = await startUpload(s, 'size/b');
    const url = new URL(up.location, 'http://x');
    const res = await rawExchange(
      s.port,
      `PATCH ${url.pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\nConnection: close\r\n\r\n`,
    );
    assert.match(res, /^HTTP\/1\.1 400 /);
    await assertAlive(s);
  });
});

describe('PUT ?digest= failures', () => {
  it('a wrong digest → 400 DIGEST_INVALID; the upload is gone; nothing under blobs/', async () => {
    const data = Buffer.from('wrong digest data');
    const up = await startUpload(s, 'bad/a');
    const r1 = await request(s, 'PATCH', up.location, { body: data });
    const claimed = randomDigest();
    const before = listOnlyFiles(path.join(storageRoot(s.dir!), 'blobs'));
    const put = await request(s, 'PUT', withQuery(locationPath(r1), `digest=${claimed}`));
    assertError(put, 400, 'DIGEST_INVALID');
    assertError(await request(s, 'GET', up.location), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await request(s, 'PUT', withQuery(up.location, `digest=${sha256(data)}`)), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.deepEqual(listOnlyFiles(path.join(storageRoot(s.dir!), 'blobs')), before);
    assert.ok(!fs.existsSync(blobDir(s, claimed)));
    assert.ok(!fs.existsSync(blobDir(s, sha256(data))));
    assert.deepEqual(uploadsOf(s, 'bad/a'), []);
    assertError(await request(s, 'GET', `/v2/bad/a/blobs/${sha256(data)}`), 404, 'BLOB_UNKNOWN');
    await assertAlive(s);
  });

  it('a wrong digest with a final chunk → same', async () => {
    const up = await startUpload(s, 'bad/b');
    const put = await request(s, 'PUT', withQuery(up.location, `digest=${sha256('something else')}`), { body: 'final chunk' });
    assertError(put, 400, 'DIGEST_INVALID');
    assertError(await request(s, 'GET', up.location), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.ok(!fs.existsSync(blobDir(s, sha256('final chunk'))));
  });

  it('a sha512 digest of other content → DIGEST_INVALID', async () => {
    const up = await startUpload(s, 'bad/c');
    const put = await request(s, 'PUT', withQuery(up.location, `digest=sha512:${'a'.repeat(128)}`), { body: 'x' });
    assertError(put, 400, 'DIGEST_INVALID');
  });

  it('no digest (or an empty one) → 400 DIGEST_INVALID; the upload stays usable', async () => {
    const up = await startUpload(s, 'bad/d');
    const r1 = await request(s, 'PATCH', up.location, { body: 'abc' });
    assertError(await request(s, 'PUT', locationPath(r1)), 400, 'DIGEST_INVALID');
    assertError(await request(s, 'PUT', withQuery(locationPath(r1), 'digest=')), 400, 'DIGEST_INVALID');
    const status = await request(s, 'GET', up.location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, '0-2');
    assert.equal((await request(s, 'PUT', withQuery(locationPath(r1), `digest=${sha256('abc')}`))).status, 201);
  });

  it('malformed digests (bad hex, wrong length, unknown algorithm) → 400 DIGEST_INVALID', async () => {
    const up = await startUpload(s, 'bad/e');
    const hex = 'a'.repeat(64);
    for (const bad of [`sha256:${'z'.repeat(64)}`, `sha256:${hex.slice(2)}`, `sha256:${hex}aa`, `sha1:${'a'.repeat(40)}`, `blake3:${hex}`, hex, `sha256:${'A'.repeat(64)}`]) {
      const res = await request(s, 'PUT', withQuery(up.location, `digest=${encodeURIComponent(bad)}`), { body: 'x' });
      assertError(res, 400, 'DIGEST_INVALID');
    }
    await assertAlive(s);
  });
});

describe('upload status (end-13) and cancel', () => {
  it('GET and HEAD → 204 with Range, Location and Docker-Upload-UUID', async () => {
    const up = await startUpload(s, 'status/a');
    const empty = await request(s, 'GET', up.location);
    assert.equal(empty.status, 204);
    assert.equal(empty.headers.range, '0-0');
    assert.equal(empty.headers['docker-upload-uuid'], up.id);
    assert.ok(String(empty.headers.location).includes(up.id));
    await request(s, 'PATCH', up.location, { body: randomBytes(77) });
    for (const method of ['GET', 'HEAD']) {
      const res = await request(s, method, up.location);
      assert.equal(res.status, 204);
      assert.equal(res.headers.range, '0-76');
      assert.equal(res.body.length, 0);
    }
  });

  it('DELETE → 204, then every upload method → 404 BLOB_UPLOAD_UNKNOWN; nothing left on disk', async () => {
    const up = await startUpload(s, 'status/b');
    await request(s, 'PATCH', up.location, { body: 'some bytes' });
    const del = await request(s, 'DELETE', up.location);
    assert.equal(del.status, 204, del.text);
    assert.deepEqual(uploadsOf(s, 'status/b'), []);
    assertError(await request(s, 'GET', up.location), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await request(s, 'PATCH', up.location, { body: 'more' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await request(s, 'PUT', withQuery(up.location, `digest=${sha256('some bytes')}`)), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await request(s, 'DELETE', up.location), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('unknown ids and ids with path tricks → 404 BLOB_UPLOAD_UNKNOWN on every method, nothing created', async () => {
    const real = await startUpload(s, 'status/c');
    const before = listOnlyFiles(s.dir!);
    const ids = [
      '00000000-0000-0000-0000-000000000000',
      'nope',
      '..',
      '.',
      '%2e%2e',
      '..%2F..%2F..%2Fstatus%2Fc',
      `..%2F${real.id}`,
      `${real.id}%2F..`,
      `${real.id}%00`,
      '%00',
      'a'.repeat(300),
      'startedat',
      '_uploads',
    ];
    for (const id of ids) {
      for (const method of ['GET', 'HEAD', 'PATCH', 'PUT', 'DELETE']) {
        const p = `/v2/status/c/blobs/uploads/${id}${method === 'PUT' ? `?digest=${sha256('x')}` : ''}`;
        const res = await request(s, method, p, method === 'PATCH' || method === 'PUT' ? { body: 'x' } : {});
        assert.equal(res.status, 404, `${method} ${id}: ${res.status} ${res.text}`);
        if (method !== 'HEAD') assert.equal(errorCode(res), 'BLOB_UPLOAD_UNKNOWN', `${method} ${id}`);
      }
    }
    assert.deepEqual(listOnlyFiles(s.dir!), before);
    assert.equal((await request(s, 'GET', real.location)).status, 204, 'the real upload is untouched');
    await assertAlive(s);
  });

  it("an upload is only reachable through its own repository's URL", async () => {
    const up = await startUpload(s, 'status/d');
    const elsewhere = up.location.replace('/v2/status/d/', '/v2/status/e/');
    assertError(await request(s, 'GET', elsewhere), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await request(s, 'PATCH', elsewhere, { body: 'x' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.ok(!fs.existsSync(path.join(storageRoot(s.dir!), 'repositories/status/e')));
  });
});

describe('resumable uploads', () => {
  it('an upload resumed after a restart on the same data dir gives the right digest', async () => {
    const a = await startServer({ keepDir: true });
    const dir = a.dir!;
    const data = randomBytes(200_000);
    const digest = sha256(data);
    let b: TestServer | undefined;
    try {
      const up = await startUpload(a, 'resume/a');
      const r1 = await request(a, 'PATCH', up.location, { body: data.subarray(0, 70_000) });
      assert.equal(r1.headers.range, '0-69999');
      await a.close();

      b = await startServer({ dir });
      const loc = up.location; // same path on the new server
      const status = await request(b, 'GET', loc);
      assert.equal(status.status, 204, status.text);
      assert.equal(status.headers.range, '0-69999');
      const r2 = await request(b, 'PATCH', loc, { body: data.subarray(70_000, 150_000), headers: { 'Content-Range': '70000-149999' } });
      assert.equal(r2.status, 202, r2.text);
      const put = await request(b, 'PUT', withQuery(locationPath(r2), `digest=${digest}`), { body: data.subarray(150_000) });
      assert.equal(put.status, 201, put.text);
      assert.equal(put.headers['docker-content-digest'], digest);
      const get = await request(b, 'GET', `/v2/resume/a/blobs/${digest}`);
      assert.equal(sha256(get.body), digest);
    } finally {
      await b?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a client that disconnects mid-PATCH leaves a resumable upload; the server keeps serving', async () => {
    const data = randomBytes(1024 * 1024);
    const digest = sha256(data);
    const up = await startUpload(s, 'resume/b');
    const url = new URL(up.location, 'http://x');
    const sent = 300_000;
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect(s.port, '127.0.0.1', () => {
        sock.write(
          `PATCH ${url.pathname}${url.search} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${data.length}\r\n\r\n`,
        );
        sock.write(data.subarray(0, sent), () => setTimeout(() => { sock.destroy(); resolve(); }, 50));
      });
      sock.on('error', reject);
    });
    await assertAlive(s);
    // An empty PATCH waits for the broken one (operations on one upload are serialized) and reports the size.
    let size = -1;
    for (let i = 0; i < 50; i++) {
      const res = await request(s, 'PATCH', up.location, { body: Buffer.alloc(0) });
      assert.equal(res.status, 202, res.text);
      const got = Number(String(res.headers.range).split('-')[1]) + 1;
      if (got === size) break;
      size = got;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(size > 0 && size <= sent, `kept ${size} of ${sent} bytes`);
    const r2 = await request(s, 'PATCH', up.location, {
      body: data.subarray(size),
      headers: { 'Content-Range': `${size}-${data.length - 1}` },
    });
    assert.equal(r2.status, 202, r2.text);
    assert.equal(r2.headers.range, `0-${data.length - 1}`);
    const put = await request(s, 'PUT', withQuery(up.location, `digest=${digest}`));
    assert.equal(put.status, 201, put.text);
    assert.equal(sha256((await request(s, 'GET', `/v2/resume/b/blobs/${digest}`)).body), digest);
  });

  it('a client that disconnects mid-PUT leaves the upload (no blob), and it can be finished', async () => {
    const data = randomBytes(100_000);
    const digest = sha256(data);
    const up = await startUpload(s, 'resume/c');
    const url = new URL(up.location, 'http://x');
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect(s.port, '127.0.0.1', () => {
        sock.write(
          `PUT ${url.pathname}?digest=${digest} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${data.length}\r\n\r\n`,
        );
        sock.write(data.subarray(0, 40_000), () => setTimeout(() => { sock.destroy(); resolve(); }, 50));
      });
      sock.on('error', reject);
    });
    await assertAlive(s);
    let size = -1;
    for (let i = 0; i < 50; i++) {
      const res = await request(s, 'PATCH', up.location, { body: Buffer.alloc(0) });
      assert.equal(res.status, 202, `the upload survives a broken PUT: ${res.text}`);
      const got = Number(String(res.headers.range).split('-')[1]) + 1;
      if (got === size) break;
      size = got;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(!fs.existsSync(blobDir(s, digest)));
    const put = await request(s, 'PUT', withQuery(up.location, `digest=${digest}`), {
      body: data.subarray(size),
      headers: { 'Content-Range': `${size}-${data.length - 1}` },
    });
    assert.equal(put.status, 201, put.text);
  });
});

describe('sha512 blobs (as the conformance suite pushes them)', () => {
  it('chunked upload closed with ?digest=sha512:…, then GET, HEAD, mount and DELETE by that digest', async () => {
    const { createHash } = await import('node:crypto');
    const data = randomBytes(5000);
    const d512 = `sha512:${createHash('sha512').update(data).digest('hex')}`;
    const up = await startUpload(s, 'sha512/a');
    const r1 = await request(s, 'PATCH', up.location, { body: data.subarray(0, 2000), headers: { 'Content-Range': '0-1999' } });
    assert.equal(r1.status, 202);
    const put = await request(s, 'PUT', withQuery(locationPath(r1), `digest=${d512}`), {
      body: data.subarray(2000),
      headers: { 'Content-Range': '2000-4999' },
    });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.headers['docker-content-digest'], d512);
    const get = await request(s, 'GET', `/v2/sha512/a/blobs/${d512}`);
    assert.deepEqual(get.body, data);
    assert.equal(get.headers['docker-content-digest'], d512);
    assert.ok(fs.existsSync(path.join(storageRoot(s.dir!), 'blobs/sha512', hexOf(d512).slice(0, 2), hexOf(d512), 'data')));
    const mount = await request(s, 'POST', `/v2/sha512/b/blobs/uploads/?mount=${d512}&from=sha512/a`);
    assert.equal(mount.status, 201, mount.text);
    assert.equal((await request(s, 'HEAD', `/v2/sha512/b/blobs/${d512}`)).status, 200);
    assert.equal((await request(s, 'DELETE', `/v2/sha512/b/blobs/${d512}`)).status, 202);
    assertError(await request(s, 'GET', `/v2/sha512/b/blobs/${d512}`), 404, 'BLOB_UNKNOWN');
  });
});

describe('concurrency', () => {
  for (const inmemory of [false, true]) {
    const label = inmemory ? 'inmemory' : 'filesystem';
    it(`${label}: concurrent uploads of the same content all succeed`, async () => {
      const srv = inmemory ? await startServer({ inmemory: true }) : s;
      try {
        const blob = randomBytes(100_000);
        const d = sha256(blob);
        const results = await Promise.all(
          [1, 2, 3, 4].map(async () => {
            const up = await startUpload(srv, 'conc/a');
            return request(srv, 'PUT', withQuery(up.location, `digest=${d}`), { body: blob });
          }),
        );
        assert.deepEqual(results.map((r) => r.status), [201, 201, 201, 201]);
        assert.equal(sha256((await request(srv, 'GET', `/v2/conc/a/blobs/${d}`)).body), d);
      } finally {
        if (inmemory) await srv.close();
      }
    });

    it(`${label}: concurrent PATCHes to one upload are applied one after another`, async () => {
      const srv = inmemory ? await startServer({ inmemory: true }) : s;
      try {
        const up = await startUpload(srv, 'conc/b');
        const parts = [0, 1, 2, 3, 4, 5].map((i) => Buffer.alloc(1000, 65 + i));
        const results = await Promise.all(parts.map((p) => request(srv, 'PATCH', up.location, { body: p })));
        assert.deepEqual(results.map((r) => r.status), [202, 202, 202, 202, 202, 202]);
        assert.deepEqual(results.map((r) => r.headers.range).sort(), ['0-1999', '0-2999', '0-3999', '0-4999', '0-5999', '0-999'].sort());
        const status = await request(srv, 'GET', up.location);
        assert.equal(status.headers.range, '0-5999');
      } finally {
        if (inmemory) await srv.close();
      }
    });
  }

  it('inmemory: a client that disconnects mid-PATCH leaves a resumable upload', async () => {
    const srv = await startServer({ inmemory: true });
    try {
      const data = randomBytes(512 * 1024);
      const up = await startUpload(srv, 'conc/c');
      const url = new URL(up.location, 'http://x');
      await new Promise<void>((resolve, reject) => {
        const sock = net.connect(srv.port, '127.0.0.1', () => {
          sock.write(`PATCH ${url.pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${data.length}\r\n\r\n`);
          sock.write(data.subarray(0, 100_000), () => setTimeout(() => { sock.destroy(); resolve(); }, 50));
        });
        sock.on('error', reject);
      });
      const now = await request(srv, 'PATCH', up.location, { body: Buffer.alloc(0) });
      assert.equal(now.status, 202, now.text);
      const size = Number(String(now.headers.range).split('-')[1]) + 1;
      assert.ok(size > 0 && size <= 100_000, String(size));
      const put = await request(srv, 'PUT', withQuery(up.location, `digest=${sha256(data)}`), {
        body: data.subarray(size),
      });
      assert.equal(put.status, 201, put.text);
    } finally {
      await srv.close();
    }
  });
});

/** Send raw bytes on a new connection; resolve with everything the server answered. */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.end(text));
    const parts: Buffer[] = [];
    sock.on('data', (c) => parts.push(c));
    sock.on('end', () => resolve(Buffer.concat(parts).toString('latin1')));
    sock.on('error', reject);
  });
}

function errorCode(res: { json(): any }): string {
  return res.json().errors[0].code;
}
