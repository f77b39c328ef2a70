import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ACCEPT_ALL, assertError, hexOf, pushImage, request, startServer, type TestServer } from './helpers.js';

describe('DELETE /v2/_wharf/repositories/<name> (Wharf extension)', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ deleteEnabled: true });
  });
  after(async () => {
    await s.close();
  });

  it('removes tags, revisions and links of the repository only; nested repositories and blobs stay', async () => {
    const parent = await pushImage(s, 'team', 'v1');
    const child = await pushImage(s, 'team/app', 'v1');
    const res = await request(s, 'DELETE', '/v2/_wharf/repositories/team');
    assert.equal(res.status, 202, res.body.toString());
    assertError(await request(s, 'GET', '/v2/team/tags/list'), 404, 'NAME_UNKNOWN');
    assertError(await request(s, 'GET', `/v2/team/manifests/${parent.digest}`, { headers: { accept: ACCEPT_ALL } }), 404, 'MANIFEST_UNKNOWN');
    assertError(await request(s, 'GET', `/v2/team/blobs/${parent.layerDigest}`), 404, 'BLOB_UNKNOWN');
    const catalog = (await request(s, 'GET', '/v2/_catalog')).json().repositories as string[];
    assert.ok(!catalog.includes('team') && catalog.includes('team/app'), catalog.join(','));
    assert.equal((await request(s, 'GET', '/v2/team/app/manifests/v1', { headers: { accept: ACCEPT_ALL } })).status, 200);
    assert.equal(child.digest.length > 0, true);
    // Blobs are left for garbage collection.
    const blob = path.join(s.dir!, 'docker/registry/v2/blobs/sha256', hexOf(parent.layerDigest).slice(0, 2), hexOf(parent.layerDigest), 'data');
    assert.ok(fs.existsSync(blob));
    // Pushing again recreates it.
    await pushImage(s, 'team', 'v2');
    assert.deepEqual((await request(s, 'GET', '/v2/team/tags/list')).json().tags, ['v2']);
  });

  it('an unknown repository is NAME_UNKNOWN; an invalid name is NAME_INVALID', async () => {
    assertError(await request(s, 'DELETE', '/v2/_wharf/repositories/nope/nothing'), 404, 'NAME_UNKNOWN');
    assertError(await request(s, 'DELETE', '/v2/_wharf/repositories/Bad..Name'), 400, 'NAME_INVALID');
  });

  it('is refused with 405 UNSUPPORTED when deletes are disabled', async () => {
    const ro = await startServer({ deleteEnabled: false });
    try {
      await pushImage(ro, 'keep', 'v1');
      assertError(await request(ro, 'DELETE', '/v2/_wharf/repositories/keep'), 405, 'UNSUPPORTED');
      assert.equal((await request(ro, 'GET', '/v2/keep/tags/list')).status, 200);
    } finally {
      await ro.close();
    }
  });
});
