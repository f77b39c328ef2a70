// A full disk during an upload: the client gets a clear 500, no partial blob becomes visible, reads go on,
// and pushes work again once space is freed. The registry's root is a small tmpfs mounted for the test.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { httpRequest, inspectDigest, makeTinyImage, run, show, skopeoCopy, startUpload, startWharf, tempDir, type RegistryServer } from './harness.js';

const sha = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

describe('a full disk', () => {
  let mountpoint: string;
  let wharf: RegistryServer;

  before(async () => {
    mountpoint = tempDir('disk-full');
    await run('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mountpoint]);
    wharf = await startWharf({ dataDir: mountpoint });
  });

  after(async () => {
    await wharf?.stop();
    await run('umount', [mountpoint], { allowFail: true });
  });

  it('answers 500 with a clear message, leaves no blob, keeps serving reads, and recovers when space is freed', async () => {
    const image = await makeTinyImage(`${tempDir('disk-full-img')}/layout`, 'v1', 2);
    await skopeoCopy(image.ref, `docker://${wharf.host}/full/app:v1`);

    const big = randomBytes(40 * 1024 * 1024);
    const location = await startUpload(wharf.url, 'full/app');
    // The answer may come before the whole body is sent (the connection then closes): read it anyway.
    const put = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${location}${location.includes('?') ? '&' : '?'}digest=${sha(big)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-length': big.length },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
      });
      req.end(big);
    });
    assert.equal(put.status, 500, put.body);
    assert.deepEqual(JSON.parse(put.body).errors.map((e: { code: string }) => e.code), ['UNKNOWN']);
    assert.match(JSON.parse(put.body).errors[0].message, /no space left in the registry storage/);
    const head = await httpRequest('HEAD', `${wharf.url}/v2/full/app/blobs/${sha(big)}`).catch((e: Error) => { throw new Error(`${e.message}: ${wharf.logTail(40)}`); });
    assert.equal(head.status, 404, 'no partial blob');
    // Reads keep working while the disk is full.
    assert.equal(await inspectDigest(`${wharf.host}/full/app:v1`), image.digest);
    await skopeoCopy(`docker://${wharf.host}/full/app:v1`, `oci:${tempDir('disk-full-pull')}/layout:t`);

    // The client gives up on the upload: its bytes go, and a push fits again.
    const cancel = await httpRequest('DELETE', location);
    assert.ok(cancel.status === 204 || cancel.status === 404, show(cancel));
    const again = await makeTinyImage(`${tempDir('disk-full-img2')}/layout`, 'v2', 2);
    await skopeoCopy(again.ref, `docker://${wharf.host}/full/app:v2`);
    assert.equal(await inspectDigest(`${wharf.host}/full/app:v2`), again.digest);
  });
});
