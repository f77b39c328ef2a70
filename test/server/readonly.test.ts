import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type StartedRegistry } from '../../src/cli/start.js';
import { assertError, makeSettings, pushBlob, request, startServer, type TestServer } from './helpers.js';

describe('storage.maintenance.readonly', () => {
  let writable: TestServer;
  let readonly: StartedRegistry;
  let digest: string;

  before(async () => {
    writable = await startServer({ keepDir: true });
    digest = await pushBlob(writable, 'ro/repo', 'kept while read-only');
    await writable.close();
    readonly = await startRegistry({ ...makeSettings({ dir: writable.dir }), readOnly: true });
  });
  after(async () => {
    await readonly.close();
  });

  it('serves reads', async () => {
    const res = await request(readonly, 'GET', `/v2/ro/repo/blobs/${digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'kept while read-only');
  });

  it('refuses every write with 405 UNSUPPORTED and a message naming the mode', async () => {
    for (const [method, path] of [
      ['POST', '/v2/ro/repo/blobs/uploads/'],
      ['DELETE', `/v2/ro/repo/blobs/${digest}`],
      ['PUT', '/v2/ro/repo/manifests/latest'],
      ['PATCH', '/v2/ro/repo/blobs/uploads/abc'],
    ] as const) {
      const res = await request(readonly, method, path, { body: Buffer.from('{}') });
      assertError(res, 405, 'UNSUPPORTED');
      assert.match(res.body.toString(), /read-only/);
    }
  });
});
