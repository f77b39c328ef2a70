// end-2 (GET/HEAD blob, ranges) and end-10 (DELETE blob).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { assertAlive, assertError, listFiles, pushBlob, randomDigest, request, sha256, startServer, type TestServer } from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(async () => {
  await s.close();
});

describe('GET/HEAD blob (end-2)', () => {
  const data = randomBytes(1000);
  let digest: string;
  before(async () => {
    digest = await pushBlob(s, 'blobs/a', data);
  });

  it('GET serves the bytes with Content-Length, Docker-Content-Digest, ETag, octet-stream', async () => {
    const res = await request(s, 'GET', `/v2/blobs/a/blobs/${digest}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, data);
    assert.equal(res.headers['content-length'], '1000');
    assert.equal(res.headers['docker-content-digest'], digest);
    assert.equal(res.headers.etag, `"${digest}"`);
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
  });

  it('HEAD has the same headers and no body', async () => {
    const res = await request(s, 'HEAD', `/v2/blobs/a/blobs/${digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
    assert.equal(res.headers['content-length'], '1000');
    assert.equal(res.headers['docker-content-digest'], digest);
    assert.equal(res.headers.etag, `"${digest}"`);
    assert.equal(res.headers['content-type'], 'application/octet-stream');
  });

  it('If-None-Match with the ETag → 304', async () => {
    const res = await request(s, 'GET', `/v2/blobs/a/blobs/${digest}`, { headers: { 'If-None-Match': `"${digest}"` } });
    assert.equal(res.status, 304);
    assert.equal(res.body.length, 0);
  });

  it('If-None-Match as Go serves it: lists, weak validators and * → 304; other ETags → 200', async () => {
    for (const v of [`"${randomDigest()}", "${digest}"`, `W/"${digest}"`, '*']) {
      const res = await request(s, 'GET', `/v2/blobs/a/blobs/${digest}`, { headers: { 'If-None-Match': v } });
      assert.equal(res.status, 304, v);
    }
    for (const v of [`"${randomDigest()}"`, digest]) {
      const res = await request(s, 'GET', `/v2/blobs/a/blobs/${digest}`, { headers: { 'If-None-Match': v } });
      assert.equal(res.status, 200, v);
    }
  });

  it('Range bytes=a-b → 206 with Content-Range and exactly those bytes', async () => {
    const cases: [string, number, number][] = [
      ['bytes=0-0', 0, 0],
      ['bytes=10-19', 10, 19],
      ['bytes=990-', 990, 999],
      ['bytes=-5', 995, 999],
      ['bytes=900-5000', 900, 999],
      ['bytes=0-999', 0, 999],
    ];
    for (const [range, start, end] of cases) {
      const res = await request(s, 'GET', `/v2/blobs/a/blobs/${digest}`, { headers: { Range: range } });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers['content-range'], `bytes ${start}-${end}/1000`, range);
      assert.equal(res.headers['content-length'], String(end - start + 1), range);
      assert.deepEqual(res.body, data.subarray(start, end + 1), range);
      assert.equal(res.headers['docker-content-digest'], digest);
    }
  });

  it('HEAD with Range → 206 headers, no body', async () => {
    const res = await request(s, 'HEAD', `/v2/blobs/a/blobs/${digest}`, { headers: { Range: 'bytes=0-9' } });
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], 'bytes 0-9/1000');
    assert.equal(res.headers['content-length'], '10');
    assert.equal(res.body.length, 0);
  });

  it('unsatisfiable or malformed ranges → 416 with Content-Range: bytes */size', async () => {
    for (const range of ['bytes=1000-', 'bytes=5000-6000', 'bytes=20-10', 'bytes=-0', 'bytes=-', 'bytes=abc']) {
      const res = await request(s, 'GET', `/v2/blobs/a/blobs/${digest}`, { headers: { Range: range } });
      assert.equal(res.status, 416, `${range}: ${res.status} ${res.text}`);
      assert.equal(res.headers['content-range'], 'bytes */1000', range);
      assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
    }
    await assertAlive(s);
  });

  it('a Range in another unit, or multiple ranges, is ignored: 200 with the whole blob', async () => {
    for (const range of ['items=0-1', 'bytes=0-1,5-6']) {
      const res = await request(s, 'GET', `/v2/blobs/a/blobs/${digest}`, { headers: { Range: range } });
      assert.equal(res.status, 200, range);
      assert.deepEqual(res.body, data);
    }
  });

  it('unknown blob → 404 BLOB_UNKNOWN (GET and HEAD)', async () => {
    const d = randomDigest();
    assertError(await request(s, 'GET', `/v2/blobs/a/blobs/${d}`), 404, 'BLOB_UNKNOWN');
    const head = await request(s, 'HEAD', `/v2/blobs/a/blobs/${d}`);
    assert.equal(head.status, 404);
    assert.equal(head.body.length, 0);
  });

  it('unknown repository → 404 BLOB_UNKNOWN', async () => {
    assertError(await request(s, 'GET', `/v2/never/pushed/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  });

  it("a blob pushed to another repository is not visible (global data, per-repo link)", async () => {
    assertError(await request(s, 'GET', `/v2/blobs/b/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    assert.equal((await request(s, 'HEAD', `/v2/blobs/b/blobs/${digest}`)).status, 404);
  });

  it('malformed digests → 400 DIGEST_INVALID', async () => {
    const hex = digest.slice(7);
    for (const bad of [
      'sha256:xyz',
      `sha256:${hex.slice(1)}`,
      `sha256:${hex}0`,
      `sha256:${hex.toUpperCase()}`,
      `md5:${hex.slice(0, 32)}`,
      `foo:${hex}`,
      'sha256',
      `sha256:`,
      `:${hex}`,
    ]) {
      const res = await request(s, 'GET', `/v2/blobs/a/blobs/${encodeURIComponent(bad)}`);
      assertError(res, 400, 'DIGEST_INVALID');
    }
    await assertAlive(s);
  });

  it('an empty blob is served with Content-Length 0', async () => {
    const empty = await pushBlob(s, 'blobs/a', Buffer.alloc(0));
    assert.equal(empty, sha256(''));
    const res = await request(s, 'GET', `/v2/blobs/a/blobs/${empty}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], '0');
    assert.equal(res.body.length, 0);
    const ranged = await request(s, 'GET', `/v2/blobs/a/blobs/${empty}`, { headers: { Range: 'bytes=0-' } });
    assert.equal(ranged.status, 416);
    assert.equal(ranged.headers['content-range'], 'bytes */0');
  });

  it('sha512 blobs are accepted and served', async () => {
    const content = Buffer.from('a sha512 blob');
    const { createHash } = await import('node:crypto');
    const d512 = `sha512:${createHash('sha512').update(content).digest('hex')}`;
    const put = await request(s, 'POST', `/v2/blobs/a/blobs/uploads/?digest=${d512}`, { body: content });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.headers['docker-content-digest'], d512);
    const res = await request(s, 'GET', `/v2/blobs/a/blobs/${d512}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, content);
  });
});

describe('a multi-MiB blob', () => {
  it('streams in and out intact, ranges from the middle included', async () => {
    const big = randomBytes(6 * 1024 * 1024 + 123);
    const digest = await pushBlob(s, 'blobs/big', big);
    const res = await request(s, 'GET', `/v2/blobs/big/blobs/${digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.length, big.length);
    assert.equal(sha256(res.body), digest);
    const mid = await request(s, 'GET', `/v2/blobs/big/blobs/${digest}`, { headers: { Range: 'bytes=3000000-5000000' } });
    assert.equal(mid.status, 206);
    assert.deepEqual(mid.body, big.subarray(3000000, 5000001));
  });
});

describe('DELETE blob (end-10)', () => {
  it('202 with Docker-Content-Digest, then 404; the other repository keeps its link', async () => {
    const data = Buffer.from('to be deleted');
    const digest = await pushBlob(s, 'del/a', data);
    await pushBlob(s, 'del/b', data);
    const res = await request(s, 'DELETE', `/v2/del/a/blobs/${digest}`);
    assert.equal(res.status, 202, res.text);
    assert.equal(res.headers['docker-content-digest'], digest);
    assertError(await request(s, 'GET', `/v2/del/a/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    assertError(await request(s, 'DELETE', `/v2/del/a/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    const other = await request(s, 'GET', `/v2/del/b/blobs/${digest}`);
    assert.equal(other.status, 200);
    assert.deepEqual(other.body, data);
  });

  it('unknown blob → 404 BLOB_UNKNOWN; malformed digest → 400 DIGEST_INVALID', async () => {
    assertError(await request(s, 'DELETE', `/v2/del/a/blobs/${randomDigest()}`), 404, 'BLOB_UNKNOWN');
    assertError(await request(s, 'DELETE', `/v2/del/a/blobs/sha256:nothex`), 400, 'DIGEST_INVALID');
  });

  it('with deletes disabled → 405 UNSUPPORTED and the blob stays', async () => {
    const ro = await startServer({ deleteEnabled: false });
    try {
      const digest = await pushBlob(ro, 'r', 'keep me');
      const before = listFiles(ro.dir!);
      assertError(await request(ro, 'DELETE', `/v2/r/blobs/${digest}`), 405, 'UNSUPPORTED');
      assertError(await request(ro, 'DELETE', `/v2/r/blobs/${randomDigest()}`), 405, 'UNSUPPORTED');
      assert.deepEqual(listFiles(ro.dir!), before);
      assert.equal((await request(ro, 'GET', `/v2/r/blobs/${digest}`)).status, 200);
    } finally {
      await ro.close();
    }
  });
});
