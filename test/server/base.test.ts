// end-1 (GET /v2/), routing, 405s, the error envelope and repository-name checks.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  assertAlive,
  assertError,
  listFiles,
  pushImage,
  randomDigest,
  request,
  startServer,
  storageRoot,
  type TestServer,
} from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(async () => {
  await s.close();
});

describe('GET /v2/ (end-1)', () => {
  it('answers 200 with {} as JSON and the API version header', async () => {
    const res = await request(s, 'GET', '/v2/');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), {});
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.equal(res.headers['content-length'], String(res.body.length));
  });

  it('answers /v2 without the slash and HEAD too', async () => {
    assert.equal((await request(s, 'GET', '/v2')).status, 200);
    const head = await request(s, 'HEAD', '/v2/');
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['docker-distribution-api-version'], 'registry/2.0');
  });

  it('refuses other methods with 405 UNSUPPORTED and an Allow header', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await request(s, method, '/v2/');
      assertError(res, 405, 'UNSUPPORTED');
      assert.match(String(res.headers.allow), /GET/);
    }
  });
});

describe('routing', () => {
  it('unknown paths get a plain 404 (with the API version header)', async () => {
    for (const p of ['/', '/v1/', '/v2/foo', '/v3/', '/v2/foo/bar/baz']) {
      const res = await request(s, 'GET', p);
      assert.equal(res.status, 404, p);
      assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0', p);
    }
  });

  it('wrong methods on every route → 405 UNSUPPORTED with Allow', async () => {
    const d = randomDigest();
    const cases: [string, string, RegExp][] = [
      ['POST', '/v2/_catalog', /GET/],
      ['DELETE', '/v2/r/tags/list', /GET/],
      ['PUT', '/v2/r/tags/list', /GET/],
      ['PUT', `/v2/r/blobs/${d}`, /DELETE/],
      ['PATCH', `/v2/r/blobs/${d}`, /HEAD/],
      ['POST', `/v2/r/blobs/${d}`, /GET/],
      ['GET', '/v2/r/blobs/uploads/', /POST/],
      ['PUT', '/v2/r/blobs/uploads/', /POST/],
      ['DELETE', '/v2/r/blobs/uploads/', /POST/],
      ['POST', '/v2/r/blobs/uploads/abc', /PATCH/],
      ['POST', '/v2/r/manifests/latest', /PUT/],
      ['PATCH', '/v2/r/manifests/latest', /DELETE/],
      ['DELETE', `/v2/r/referrers/${d}`, /GET/],
      ['PUT', `/v2/r/referrers/${d}`, /GET/],
    ];
    for (const [method, p, allow] of cases) {
      const res = await request(s, method, p);
      assertError(res, 405, 'UNSUPPORTED');
      assert.match(String(res.headers.allow), allow, `${method} ${p}`);
    }
    await assertAlive(s);
  });
});

describe('the error envelope', () => {
  it('errors carry the API version header, JSON type and {errors:[{code,message,detail?}]}', async () => {
    const res = await request(s, 'GET', `/v2/nope/blobs/${randomDigest()}`);
    assertError(res, 404, 'BLOB_UNKNOWN');
    const [e] = res.json().errors;
    assert.deepEqual(Object.keys(e).filter((k) => !['code', 'message', 'detail'].includes(k)), []);
    assert.equal(res.headers['content-length'], String(res.body.length));
  });

  it('HEAD errors have no body but the right status and headers', async () => {
    const res = await request(s, 'HEAD', `/v2/nope/manifests/latest`);
    assert.equal(res.status, 404);
    assert.equal(res.body.length, 0);
    assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
  });
});

describe('repository names', () => {
  const long = Array.from({ length: 26 }, () => 'abcdefghij').join('/'); // 285 chars, each component valid

  // Names that must never create anything: the grammar refuses them (400 NAME_INVALID),
  // or the route does not match at all (a plain 404).
  const bad: [string, string][] = [
    ['uppercase', 'Foo'],
    ['uppercase component', 'foo/Bar'],
    ['dot-dot', '../foo'],
    ['dot-dot inside', 'foo/../bar'],
    ['dot component', 'foo/./bar'],
    ['double slash', 'foo//bar'],
    ['leading slash', '/foo'],
    ['trailing separator', 'foo-'],
    ['leading separator', '-foo'],
    ['percent-encoded slash', 'foo%2Fbar'],
    ['percent-encoded dot-dot', '%2e%2e/foo'],
    ['NUL', 'foo%00bar'],
    ['space', 'foo%20bar'],
    ['triple underscore', 'foo___bar'],
    ['too long', long],
  ];

  it('a 255-character name is fine, 256+ is NAME_INVALID', async () => {
    const ok = `${'a'.repeat(127)}/${'b'.repeat(127)}`;
    assert.equal(ok.length, 255);
    const res = await request(s, 'POST', `/v2/${ok}/blobs/uploads/`);
    assert.equal(res.status, 202, res.text);
    await request(s, 'DELETE', new URL(String(res.headers.location)).pathname);
    const tooLong = `${ok}c`;
    assertError(await request(s, 'POST', `/v2/${tooLong}/blobs/uploads/`), 400, 'NAME_INVALID');
    assertError(await request(s, 'GET', `/v2/${long}/tags/list`), 400, 'NAME_INVALID');
  });

  for (const [label, name] of bad) {
    it(`refuses ${label} (${name.slice(0, 40)}) on every route, leaving nothing on disk`, async () => {
      const before = listFiles(s.dir!);
      const d = randomDigest();
      const attempts: [string, string, string?][] = [
        ['POST', `/v2/${name}/blobs/uploads/`],
        ['POST', `/v2/${name}/blobs/uploads/?digest=${d}`, 'x'],
        ['PUT', `/v2/${name}/manifests/latest`, '{"schemaVersion":2}'],
        ['GET', `/v2/${name}/manifests/latest`],
        ['GET', `/v2/${name}/tags/list`],
        ['GET', `/v2/${name}/blobs/${d}`],
        ['DELETE', `/v2/${name}/blobs/${d}`],
        ['GET', `/v2/${name}/referrers/${d}`],
        ['PATCH', `/v2/${name}/blobs/uploads/someid`, 'x'],
      ];
      for (const [method, p, body] of attempts) {
        const res = await request(s, method, p, body === undefined ? {} : { body });
        assert.ok(res.status === 400 || res.status === 404, `${method} ${p} → ${res.status} ${res.text}`);
        if (res.status === 400) assertError(res, 400, 'NAME_INVALID');
        assert.notEqual(res.status, 202);
        assert.notEqual(res.status, 201);
      }
      assert.deepEqual(listFiles(s.dir!), before, 'nothing may be written for an invalid name');
      await assertAlive(s);
    });
  }

  it('names with the separators the grammar allows work (., _, __, -, multiple components)', async () => {
    for (const name of ['a.b', 'a_b', 'a__b', 'a--b', 'a/b/c/d', '0x/y-1.2_3']) {
      const img = await pushImage(s, name, 'v1');
      const res = await request(s, 'GET', `/v2/${name}/manifests/${img.digest}`);
      assert.equal(res.status, 200, name);
    }
  });

  it('the data dir never gets entries outside docker/registry/v2', async () => {
    const top = listFiles(s.dir!).filter((f) => !f.startsWith('docker/'));
    assert.deepEqual(top, []);
    assert.ok(listFiles(storageRoot(s.dir!)).every((f) => f.startsWith('blobs/') || f.startsWith('repositories/')));
  });
});
