// auth.silly, exactly as Distribution: any Authorization header passes; without one, a Bearer challenge
// whose scope lists every access as type:name:action, space separated.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { captureLog, startAuthServer } from './auth-fixtures.js';
import { assertError, request, type TestServer } from './helpers.js';

describe('auth.silly', () => {
  let server: TestServer;
  before(async () => {
    server = await startAuthServer({ silly: { realm: 'https://silly.example/token', service: 'silly-service' } }, captureLog().log);
  });
  after(() => server?.close());

  test('without an Authorization header: 401 and the Bearer challenge with one scope per action', async () => {
    const base = await request(server, 'GET', '/v2/');
    assertError(base, 401, 'UNAUTHORIZED');
    assert.equal(base.headers['www-authenticate'], 'Bearer realm="https://silly.example/token",service="silly-service"');
    const push = await request(server, 'POST', '/v2/a/b/blobs/uploads/');
    assertError(push, 401, 'UNAUTHORIZED');
    assert.equal(push.headers['www-authenticate'], 'Bearer realm="https://silly.example/token",service="silly-service",scope="repository:a/b:pull repository:a/b:push"');
    const cat = await request(server, 'GET', '/v2/_catalog');
    assert.equal(cat.headers['www-authenticate'], 'Bearer realm="https://silly.example/token",service="silly-service",scope="registry:catalog:*"');
    const empty = await request(server, 'GET', '/v2/', { headers: { Authorization: '' } });
    assert.equal(empty.status, 401, 'an empty header is no header');
  });

  test('any Authorization header passes', async () => {
    for (const authorization of ['Bearer anything', 'Basic Zm9vOmJhcg==', 'x']) {
      assert.equal((await request(server, 'GET', '/v2/', { headers: { Authorization: authorization } })).status, 200);
    }
    const upload = await request(server, 'POST', '/v2/a/b/blobs/uploads/', { headers: { Authorization: 'whatever' } });
    assert.equal(upload.status, 202);
  });
});
