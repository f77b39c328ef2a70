/**
 * The oss driver against the fake OSS server (test/storage/fake-oss, written from OSS's API
 * reference; it checks every signature): what the shared suite cannot see — Distribution's object
 * names, uploads resumed by another instance (also one Distribution left), moves that copy in
 * parts, encryption headers, a wrong secret, and signed redirect URLs that serve and expire.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import OSS from 'ali-oss';
import { OssDriver } from '../../src/storage/oss.js';
import { parseOssOptions } from '../../src/storage/oss-options.js';
import { StorageError } from '../../src/storage/driver.js';
import { startFakeOss, type FakeOss } from './fake-oss/index.js';
import { chunkedUploadAcrossRegistries, MiB, sha } from './helpers.js';

describe('oss driver on the fake OSS server', () => {
  let oss: FakeOss;
  let bucket: string;
  /** Another program writing to the bucket: ali-oss itself, as Distribution's requests would look. */
  let raw: OSS;
  const make = (extra: Record<string, unknown> = {}) => OssDriver.fromOptions(oss.options(bucket, { rootdirectory: '/specifics', chunksize: 5 * MiB, ...extra }));
  /** Operations the fake served since `mark`. */
  const since = (mark: number) => oss.log.slice(mark).map((r) => r.operation);

  before(async () => {
    oss = await startFakeOss();
    bucket = oss.createBucket('specifics');
    raw = new OSS({ accessKeyId: oss.accessKeyId, accessKeySecret: oss.accessKeySecret, region: oss.region, endpoint: `http://${oss.endpoint}`, bucket });
  });

  after(async () => {
    const leaked = oss.openUploads(bucket);
    await oss.stop();
    assert.deepEqual(leaked, [], 'no multipart upload is left open');
  });

  it("names objects as Distribution's oss driver: <rootdirectory>/docker/registry/v2/..., and reads what others wrote", async () => {
    const rooted = make({ rootdirectory: '/some/root/' });
    await rooted.putContent('/docker/registry/v2/repositories/a/_layers/sha256/ab/link', Buffer.from('sha256:ab'));
    assert.deepEqual(oss.keys(bucket, 'some/'), ['some/root/docker/registry/v2/repositories/a/_layers/sha256/ab/link']);
    const bare = make({ rootdirectory: '' });
    await bare.putContent('/docker/registry/v2/x', Buffer.from('x'));
    assert.deepEqual(oss.keys(bucket, 'docker/'), ['docker/registry/v2/x']);
    assert.equal((await make({ rootdirectory: '/' }).getContent('/docker/registry/v2/x')).toString(), 'x', "rootdirectory '/' is the bucket's root");
    // Written by another program (registry:2's driver): read, listed, walked.
    await raw.put('some/root/docker/registry/v2/blobs/sha256/cd/cdef/data', Buffer.from('blob'));
    assert.equal((await rooted.getContent('/docker/registry/v2/blobs/sha256/cd/cdef/data')).toString(), 'blob');
    assert.deepEqual(await rooted.list('/docker/registry/v2'), ['/docker/registry/v2/blobs', '/docker/registry/v2/repositories']);
    const walked: string[] = [];
    await rooted.walk('/docker/registry/v2/blobs', (i) => {
      walked.push(i.path);
    });
    assert.deepEqual(walked, ['/docker/registry/v2/blobs/sha256', '/docker/registry/v2/blobs/sha256/cd', '/docker/registry/v2/blobs/sha256/cd/cdef', '/docker/registry/v2/blobs/sha256/cd/cdef/data']);
    await rooted.delete('/docker');
    await bare.delete('/docker');
    assert.deepEqual(oss.keys(bucket), []);
  });

  it('an upload resumes on another driver instance; a session that dies keeps the parts it sent', async () => {
    const path = '/docker/registry/v2/repositories/r/_uploads/u1/data';
    const first = make();
    const w1 = await first.writer(path, true);
    assert.equal(w1.size, 0);
    const p0 = randomBytes(7 * MiB);
    await w1.write(p0);
    await w1.close();
    // Another instance sees the bytes so far (the registry's upload status) and goes on.
    const second = make();
    assert.equal((await second.stat(path)).size, p0.length);
    // list and walk see objects only (a file being written is none yet), as in Distribution.
    await assert.rejects(second.list('/docker/registry/v2/repositories/r/_uploads'), { name: 'PathNotFoundError' });
    const w2 = await second.writer(path, true);
    assert.equal(w2.size, p0.length);
    const p1 = randomBytes(3 * MiB + 11);
    await w2.write(p1);
    await w2.close();
    // A session that dies without closing: the 5 MiB parts it sent stay, its buffered tail is lost.
    const dying = await make().writer(path, true);
    const lost = randomBytes(11 * MiB);
    await dying.write(lost);
    const upload = [...oss.state.store.uploads.values()].find((u) => u.key === `specifics${path}`)!;
    for (let i = 0; i < 100 && upload.parts.size < 5; i++) await new Promise((r) => setTimeout(r, 20));
    const fourth = make();
    const kept = p0.length + p1.length + 10 * MiB;
    assert.equal((await fourth.stat(path)).size, kept);
    const w4 = await fourth.writer(path, true);
    assert.equal(w4.size, kept);
    const p2 = randomBytes(2 * MiB);
    await w4.write(p2);
    await w4.commit();
    const all = Buffer.concat([p0, p1, lost.subarray(0, 10 * MiB), p2]);
    assert.equal(sha(await first.getContent(path)), sha(all));
    assert.equal((await first.stat(path)).size, all.length);
    assert.deepEqual(oss.openUploads(bucket), []);
    await first.delete('/docker');
  });

  it('a session ending in a part under 100 KiB is followed by completing it and copying it into a new upload', async () => {
    const driver = make();
    for (const head of [randomBytes(6 * MiB + 5), randomBytes(50 * 1024)]) {
      const path = `/small-tail/${head.length}/data`;
      const w = await driver.writer(path, false);
      await w.write(head);
      await w.close(); // 5 MiB part + a 1 MiB-and-5-byte part, or one 50 KiB part
      const tail = randomBytes(40 * 1024);
      const w2 = await make().writer(path, true);
      assert.equal(w2.size, head.length);
      const mark = oss.log.length;
      await w2.write(tail);
      await w2.close();
      const ops = since(mark);
      if (head.length > MiB) {
        assert.ok(!ops.includes('CompleteMultipartUpload'), `a last part over 100 KiB is simply followed: ${ops.join(' ')}`);
      } else {
        assert.ok(ops.includes('CompleteMultipartUpload'), ops.join(' '));
        assert.ok(!ops.includes('UploadPartCopy'), 'under 100 KiB the object is read back instead');
      }
      const more = randomBytes(30 * 1024); // the tail is under 100 KiB now, whatever the head was
      const w3 = await make().writer(path, true);
      assert.equal(w3.size, head.length + tail.length);
      const mark3 = oss.log.length;
      await w3.write(more);
      await w3.commit();
      if (head.length > MiB) assert.ok(since(mark3).includes('UploadPartCopy'), since(mark3).join(' '));
      assert.ok((await driver.getContent(path)).equals(Buffer.concat([head, tail, more])));
      assert.deepEqual(oss.keys(bucket, `specifics/small-tail/${head.length}/`), [`specifics/small-tail/${head.length}/data`]);
    }
    assert.deepEqual(oss.openUploads(bucket), []);
    await driver.delete('/small-tail');
  });

  it('resumes an upload Distribution left (its parts at the key), and a chunked blob upload moves between registry instances', async () => {
    const path = '/docker/registry/v2/repositories/d/_uploads/u2/data';
    const key = `specifics${path}`;
    const parts = [randomBytes(5 * MiB), randomBytes(MiB + 3)];
    const { uploadId } = await raw.initMultipartUpload(key, { mime: 'application/octet-stream' });
    for (const [i, p] of parts.entries()) await raw.uploadPart(key, uploadId, i + 1, p, 0, p.length);
    const w = await make().writer(path, true);
    assert.equal(w.size, 6 * MiB + 3);
    await w.write(Buffer.from('end'));
    await w.commit();
    assert.ok((await make().getContent(path)).equals(Buffer.concat([...parts, Buffer.from('end')])));

    const { a } = await chunkedUploadAcrossRegistries(make, [randomBytes(6 * MiB + 5), randomBytes(MiB), randomBytes(5 * MiB + 1)]);
    assert.deepEqual(oss.openUploads(bucket), []);
    await a.driver.delete('/docker');
  });

  it('moves with CopyObject, and large files with UploadPartCopy in parts, as Distribution (from 128 MiB)', async () => {
    const settings = { ...parseOssOptions(oss.options(bucket, { rootdirectory: '/moves' })), copyThreshold: MiB, copyPartSize: 300 * 1024 };
    const driver = new OssDriver(settings);
    const small = randomBytes(MiB - 1);
    const large = randomBytes(2 * MiB + 7);
    await driver.putContent('/src/small', small);
    await driver.putContent('/src/large', large);
    let mark = oss.log.length;
    await driver.move('/src/small', '/dst/small');
    assert.deepEqual(since(mark).filter((o) => o !== 'HeadObject'), ['CopyObject', 'DeleteObject']);
    mark = oss.log.length;
    await driver.move('/src/large', '/dst/large');
    const ops = since(mark);
    assert.equal(ops.filter((o) => o === 'UploadPartCopy').length, 7, ops.join(' '));
    assert.ok(ops.includes('CompleteMultipartUpload') && !ops.includes('CopyObject'), ops.join(' '));
    assert.ok((await driver.getContent('/dst/small')).equals(small));
    assert.ok((await driver.getContent('/dst/large')).equals(large));
    assert.deepEqual(await driver.list('/'), ['/dst']);
    await driver.delete('/dst');
  });

  it('encrypt and encryptionkeyid ask OSS for server-side encryption on every object, moved ones too', async () => {
    for (const [extra, expected] of [
      [{ encrypt: true }, { algorithm: 'AES256', keyId: undefined }],
      [{ encrypt: true, encryptionkeyid: 'kms-key-1' }, { algorithm: 'KMS', keyId: 'kms-key-1' }],
    ] as const) {
      const driver = make({ ...extra, rootdirectory: '/sse' });
      await driver.putContent('/put', Buffer.from('p'));
      const w = await driver.writer('/up/data', false);
      await w.write(randomBytes(6 * MiB));
      await w.commit();
      await driver.move('/up/data', '/blob/data');
      for (const key of ['sse/put', 'sse/blob/data']) assert.deepEqual(oss.state.store.get(bucket, key)?.encryption, expected, key);
      const head = await raw.head('sse/blob/data');
      assert.equal((head.res.headers as Record<string, string>)['x-oss-server-side-encryption'], expected.algorithm);
      await driver.delete('/up').catch(() => undefined);
      await driver.delete('/blob');
      await driver.delete('/put');
    }
  });

  it('a wrong secret or key id fails clearly: the fake checks every signature', async () => {
    const wrong = OssDriver.fromOptions(oss.options(bucket, { accesskeysecret: 'not-the-secret' }));
    const mark = oss.log.length;
    await assert.rejects(wrong.stat('/anything'), (err: Error) => {
      assert.ok(err instanceof StorageError);
      assert.match(err.message, /^oss: stat \/anything: SignatureDoesNotMatch \(HTTP 403\): The request signature we calculated does not match/);
      return true;
    });
    await assert.rejects(wrong.putContent('/x', Buffer.from('x')), /SignatureDoesNotMatch \(HTTP 403\)/);
    assert.deepEqual(oss.keys(bucket, 'x'), [], 'nothing was written');
    assert.ok(oss.log.slice(mark).every((r) => r.status === 403));
    const unknown = OssDriver.fromOptions(oss.options(bucket, { accesskeyid: 'LTAInobody' }));
    await assert.rejects(unknown.list('/'), /InvalidAccessKeyId \(HTTP 403\)/);
  });

  it('blob GETs redirect to signed URLs that serve the bytes (ranges too), refuse tampering, and expire', async () => {
    const driver = make();
    const content = randomBytes(100_000);
    await driver.putContent('/redirect/blob', content);
    const url = (await driver.redirectURL('GET', '/redirect/blob'))!;
    assert.ok(url.startsWith(`http://${oss.endpoint}/specifics/redirect/blob?OSSAccessKeyId=${oss.accessKeyId}&Expires=`), url);
    const got = await fetch(url);
    assert.equal(got.status, 200);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(content));
    const ranged = await fetch(url, { headers: { Range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(content.subarray(10, 20)));
    const head = await fetch((await driver.redirectURL('HEAD', '/redirect/blob'))!, { method: 'HEAD' });
    assert.equal(head.headers.get('content-length'), '100000');
    // The signature covers the verb, the key and the expiry.
    assert.equal((await fetch(url, { method: 'HEAD' })).status, 403, 'a GET URL does not sign a HEAD');
    await driver.putContent('/redirect/other', Buffer.from('secret'));
    const tampered = await fetch(url.replace('/redirect/blob?', '/redirect/other?'));
    assert.equal(tampered.status, 403);
    assert.match(await tampered.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
    const later = new URL(url);
    later.searchParams.set('Expires', String(Number(later.searchParams.get('Expires')) + 3600));
    assert.equal((await fetch(later)).status, 403, 'a longer life is not signed');
    // 21 minutes later the URL has expired.
    oss.shiftClock(21 * 60_000);
    try {
      const expired = await fetch(url);
      assert.equal(expired.status, 403);
      assert.match(await expired.text(), /<Code>AccessDenied<\/Code>\s*<Message>Request has expired\.<\/Message>/);
    } finally {
      oss.shiftClock(0);
    }
    assert.equal((await fetch(url)).status, 200);
    await driver.delete('/redirect');
  });

  it('cancel and delete abort multipart uploads, at the path and below it', async () => {
    const driver = make();
    const w = await driver.writer('/cancel/_uploads/x/data', false);
    await w.write(randomBytes(6 * MiB));
    await w.close();
    assert.equal((await driver.stat('/cancel/_uploads/x/data')).size, 6 * MiB);
    assert.equal(oss.openUploads(bucket).length, 1);
    const again = await driver.writer('/cancel/_uploads/x/data', true);
    await again.cancel();
    assert.deepEqual(oss.openUploads(bucket), []);
    await assert.rejects(driver.stat('/cancel/_uploads/x/data'));

    const abandoned = await driver.writer('/cancel/_uploads/y/data', false);
    await abandoned.write(randomBytes(6 * MiB));
    await abandoned.close();
    await driver.putContent('/cancel/_uploads/y/startedat', Buffer.from('2020-01-01T00:00:00Z'));
    await driver.delete('/cancel/_uploads/y'); // what upload purging does
    assert.deepEqual(oss.openUploads(bucket), []);
    // A file that is only an upload is deleted too, then is gone.
    const only = await driver.writer('/cancel/z/data', false);
    await only.write(Buffer.from('z'));
    await only.close();
    await driver.delete('/cancel/z/data');
    await assert.rejects(driver.delete('/cancel/z/data'), { name: 'PathNotFoundError' });
    await assert.rejects(driver.stat('/cancel'));
    assert.deepEqual(oss.openUploads(bucket), []);
  });
});
