// http.prefix, http.relativeurls, http.host, X-Forwarded-* and http.headers: what clients see in
// Location and Link headers, and on every response.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertError, OCI_MANIFEST, pushImage, request, sha256, startServer, type TestServer } from './helpers.js';

async function withServer(opts: Parameters<typeof startServer>[0], fn: (s: TestServer) => Promise<void>): Promise<void> {
  const s = await startServer({ inmemory: true, ...opts });
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

describe('http.prefix', () => {
  it('serves the API under the prefix only, and every Location and Link carries it', async () => {
    await withServer({ prefix: '/reg/' }, async (s) => {
      assert.equal((await request(s, 'GET', '/reg/v2/')).status, 200);
      const outside = await request(s, 'GET', '/v2/');
      assert.equal(outside.status, 404);
      assert.equal(outside.headers['docker-distribution-api-version'], 'registry/2.0');
      const start = await request(s, 'POST', '/reg/v2/p/blobs/uploads/');
      assert.equal(start.status, 202);
      const loc = new URL(String(start.headers.location));
      assert.match(loc.pathname, /^\/reg\/v2\/p\/blobs\/uploads\/[A-Za-z0-9_-]+$/);
      const put = await request(s, 'PUT', `${loc.pathname}?digest=${sha256('{}')}`, { body: '{}' });
      assert.equal(put.status, 201, put.text);
      assert.equal(new URL(String(put.headers.location)).pathname, `/reg/v2/p/blobs/${sha256('{}')}`);
      const doc = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 }, layers: [] }));
      for (const tag of ['a', 'b', 'c']) {
        const m = await request(s, 'PUT', `/reg/v2/p/manifests/${tag}`, { body: doc, headers: { 'Content-Type': OCI_MANIFEST } });
        assert.equal(m.status, 201, m.text);
        assert.equal(new URL(String(m.headers.location)).pathname, `/reg/v2/p/manifests/${sha256(doc)}`);
      }
      const tags = await request(s, 'GET', '/reg/v2/p/tags/list?n=1');
      assert.equal(tags.headers.link, '</reg/v2/p/tags/list?last=a&n=1>; rel="next"');
      const cat = await request(s, 'GET', '/reg/v2/_catalog?n=1');
      assert.deepEqual(cat.json().repositories, ['p']);
      assertError(await request(s, 'GET', '/reg/v2/P/tags/list'), 400, 'NAME_INVALID');
    });
  });
});

describe('Location URLs', () => {
  it('absolute from the Host header by default, relative with http.relativeurls', async () => {
    await withServer({}, async (s) => {
      const res = await request(s, 'POST', '/v2/l/blobs/uploads/', { headers: { Host: 'registry.example:5000' } });
      assert.match(String(res.headers.location), /^http:\/\/registry\.example:5000\/v2\/l\/blobs\/uploads\//);
      const fwd = await request(s, 'POST', '/v2/l/blobs/uploads/', { headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'front.example' } });
      assert.match(String(fwd.headers.location), /^https:\/\/front\.example\/v2\/l\/blobs\/uploads\//);
    });
    await withServer({ relativeURLs: true }, async (s) => {
      const res = await request(s, 'POST', '/v2/l/blobs/uploads/');
      assert.match(String(res.headers.location), /^\/v2\/l\/blobs\/uploads\/[A-Za-z0-9_-]+$/);
      const img = await pushImage(s, 'l', 'v1');
      const m = await request(s, 'PUT', '/v2/l/manifests/v2', { body: img.content, headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal(m.headers.location, `/v2/l/manifests/${img.digest}`);
    });
  });

  it('http.host fixes scheme and host whatever the request says', async () => {
    await withServer({ host: 'https://registry.example.com' }, async (s) => {
      const res = await request(s, 'POST', '/v2/l/blobs/uploads/', { headers: { 'X-Forwarded-Host': 'other.example' } });
      assert.match(String(res.headers.location), /^https:\/\/registry\.example\.com\/v2\/l\/blobs\/uploads\//);
    });
  });
});

describe('http.headers', () => {
  it('are on every response: success, API errors, 405 and the plain 404', async () => {
    await withServer({ headers: { 'X-Content-Type-Options': ['nosniff'], 'X-Extra': ['one'] } }, async (s) => {
      for (const [method, p] of [
        ['GET', '/v2/'],
        ['GET', '/v2/x/tags/list'],
        ['POST', '/v2/'],
        ['GET', '/nowhere'],
      ] as const) {
        const res = await request(s, method, p);
        assert.equal(res.headers['x-content-type-options'], 'nosniff', `${method} ${p}`);
        assert.equal(res.headers['x-extra'], 'one', `${method} ${p}`);
        assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
      }
    });
  });
});
