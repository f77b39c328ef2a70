/**
 * The gcs driver on the fake Cloud Storage server, for what the shared suite cannot see: object
 * names as Distribution's, unfinished uploads in Distribution's format (continued by another
 * instance, begun or finished "by Distribution"), recovery from a writer that died, the store
 * keeping fewer bytes or losing answers, signed redirects, credentials, the bucket check and
 * maxconcurrency.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { GcsDriver } from '../../src/storage/gcs.js';
import { ServiceAccountTokens } from '../../src/storage/gcs-auth.js';
import { serviceAccountKey } from '../../src/storage/gcs-options.js';
import { makeServiceAccount, startFakeGcs, type GcsFixture } from './gcs-fake.js';
import { blobDataPath, chunkedUploadAcrossRegistries, MiB, readAll } from './helpers.js';

const KiB = 1024;
const SESSION_TYPE = 'application/x-docker-upload-session';

describe('gcs driver on the fake Cloud Storage server', () => {
  let gcs: GcsFixture;
  let bucket: string;
  const make = (extra: Record<string, unknown> = {}, redirect = true) => GcsDriver.fromOptions(gcs.options(bucket, { chunksize: 256 * KiB, ...extra }), { redirect }, gcs.env);
  const names = () => gcs.fake.store.names(bucket);
  const object = (name: string) => gcs.fake.store.get(bucket, name);
  /** What Distribution (or any client) does with a token of the same service account. */
  const tokens = () => new ServiceAccountTokens(serviceAccountKey(gcs.account.key, ''));

  before(async () => {
    gcs = await startFakeGcs();
    bucket = gcs.createBucket('specifics');
  });

  after(async () => {
    await gcs?.stop();
  });

  it("names objects as Distribution: the path without its leading '/', under rootdirectory when set", async () => {
    const link = '/docker/registry/v2/repositories/a/_layers/sha256/ab/link';
    await make().putContent(link, Buffer.from('sha256:ab'));
    await make({ rootdirectory: '/some/root/' }).putContent(link, Buffer.from('sha256:cd'));
    await make({ rootdirectory: '/' }).putContent(link, Buffer.from('sha256:ab'));
    assert.deepEqual(names(), ['docker/registry/v2/repositories/a/_layers/sha256/ab/link', 'some/root/docker/registry/v2/repositories/a/_layers/sha256/ab/link']);
    assert.equal(object('docker/registry/v2/repositories/a/_layers/sha256/ab/link')!.contentType, 'application/octet-stream');
    assert.deepEqual(await make({ rootdirectory: 'some/root' }).getContent(link), Buffer.from('sha256:cd'));
    assert.deepEqual(await make({ rootdirectory: '/some/root' }).list('/'), ['/docker']);
    assert.deepEqual(await make().list('/'), ['/docker', '/some']);
    await make().delete('/docker');
    await make({ rootdirectory: '/some/root' }).delete('/docker');
    assert.deepEqual(names(), []);
  });

  it("a closed upload is Distribution's state object: the session in Session-URI, its bytes in Offset, the tail as body", async () => {
    const p = '/docker/registry/v2/repositories/r/_uploads/u1/data';
    const name = p.slice(1);
    const data = randomBytes(600 * KiB);
    const w = await make().writer(p, false);
    await w.write(data);
    await w.close();
    const state = object(name)!;
    assert.equal(state.contentType, SESSION_TYPE);
    assert.equal(state.metadata.Offset, String(512 * KiB), 'whole 256 KiB units went to the session');
    assert.ok(state.metadata['Session-URI'].startsWith(`${gcs.fake.url}/upload/storage/v1/b/${bucket}/o?uploadType=resumable`), state.metadata['Session-URI']);
    assert.equal(state.size, 600 * KiB - 512 * KiB);
    assert.deepEqual((await make().stat(p)).size, data.length, 'stat counts the session and the tail');
    assert.deepEqual(await make().list('/docker/registry/v2/repositories/r/_uploads/u1'), [p]);

    // Finished the way Distribution's Commit finishes it: the tail as the last chunk, with the total.
    const tail = await (await fetch(`${gcs.fake.url}/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}?alt=media`, { headers: { authorization: `Bearer ${await tokens().token()}` } })).arrayBuffer();
    const res = await fetch(state.metadata['Session-URI'], {
      method: 'PUT',
      headers: { 'content-range': `bytes ${512 * KiB}-${data.length - 1}/${data.length}` },
      body: Buffer.from(tail),
    });
    assert.equal(res.status, 200);
    assert.equal(object(name)!.contentType, 'application/octet-stream', 'the completed session replaced the state object');
    assert.ok((await make().getContent(p)).equals(data));
    await make().delete('/docker');
  });

  it('continues an upload that Distribution began (its own session, state object and tail)', async () => {
    const name = 'docker/registry/v2/repositories/r/_uploads/u2/data';
    const token = await tokens().token();
    const start = await fetch(`${gcs.fake.url}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=${name}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'x-upload-content-type': 'application/octet-stream', 'content-length': '0' },
    });
    const session = start.headers.get('location')!;
    const first = randomBytes(256 * KiB);
    const put = await fetch(session, { method: 'PUT', headers: { 'content-range': `bytes 0-${first.length - 1}/*` }, body: first });
    assert.equal(put.status, 308);
    const tail = randomBytes(1000);
    const boundary = 'distribution-boundary';
    const meta = JSON.stringify({ name, contentType: SESSION_TYPE, metadata: { 'Session-URI': session, Offset: String(first.length) } });
    const multipart = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Type: application/json\r\n\r\n${meta}\r\n--${boundary}\r\nContent-Type: ${SESSION_TYPE}\r\n\r\n`),
      tail,
      Buffer.from(`\r\n--${boundary}--`),
    ]);
    const saved = await fetch(`${gcs.fake.url}/upload/storage/v1/b/${bucket}/o?uploadType=multipart`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/related; boundary=${boundary}` },
      body: multipart,
    });
    assert.equal(saved.status, 200);

    const w = await make().writer(`/${name}`, true);
    assert.equal(w.size, first.length + tail.length);
    const more = randomBytes(300 * KiB);
    await w.write(more);
    await w.commit();
    assert.ok((await make().getContent(`/${name}`)).equals(Buffer.concat([first, tail, more])));
    await make().delete('/docker');
  });

  it('resumes on other instances many times; a writer that died after sending chunks leaves them to the next one', async () => {
    const p = '/up/data';
    const parts = [randomBytes(300 * KiB), randomBytes(5), randomBytes(700 * KiB)];
    let w = await make().writer(p, false);
    await w.write(parts[0]);
    await w.close();
    for (const part of parts.slice(1)) {
      w = await make().writer(p, true);
      await w.write(part);
      await w.close();
    }
    const sofar = Buffer.concat(parts);
    assert.equal((await make().stat(p)).size, sofar.length);
    // This one sends 1 MiB (four chunks) and dies before close: its state is never saved.
    const dying = await make().writer(p, true);
    const lost = randomBytes(MiB);
    await dying.write(lost);
    const state = object('up/data')!;
    assert.equal(Number(state.metadata.Offset) + state.size, sofar.length, 'the saved state predates the dying writer');
    const next = await make().writer(p, true);
    const all = Buffer.concat([sofar, lost]);
    assert.ok(next.size > sofar.length && next.size <= all.length && next.size % (256 * KiB) === 0, `adopted what the session holds (${next.size})`);
    const rest = randomBytes(10);
    await next.write(all.subarray(next.size));
    await next.write(rest);
    await next.commit();
    assert.ok((await make().getContent(p)).equals(Buffer.concat([all, rest])));
    await make().delete('/up');
  });

  it('sends again what the store did not keep, and asks the session after a lost answer', async () => {
    const data = randomBytes(3 * MiB + 17);
    gcs.fake.faults.shortChunks = 2;
    gcs.fake.faults.lostAnswers = 2;
    const w = await make({ chunksize: MiB }).writer('/faults/data', false);
    for (let i = 0; i < data.length; i += 100_000) await w.write(data.subarray(i, i + 100_000));
    await w.commit();
    assert.deepEqual(gcs.fake.faults, { shortChunks: 0, lostAnswers: 0 }, 'every fault was met');
    assert.ok((await make().getContent('/faults/data')).equals(data));
    await make().delete('/faults');
  });

  it('reading an unfinished upload completes it; appending afterwards copies it into a new session', async () => {
    const p = '/read/data';
    const a = randomBytes(400 * KiB);
    let w = await make().writer(p, false);
    await w.write(a);
    await w.close();
    assert.ok((await readAll(await make().reader(p, 100, 1000))).equals(a.subarray(100, 1100)));
    assert.equal(object('read/data')!.contentType, 'application/octet-stream');
    const b = randomBytes(300 * KiB);
    w = await make().writer(p, true);
    assert.equal(w.size, a.length);
    await w.write(b);
    await w.close();
    assert.equal((await make().stat(p)).size, a.length + b.length);
    w = await make().writer(p, true);
    await w.commit();
    assert.ok((await make().getContent(p)).equals(Buffer.concat([a, b])));
    await make().delete('/read');
  });

  it('a chunked blob upload moves between two registry instances and is served from the same bucket', async () => {
    const { digest } = await chunkedUploadAcrossRegistries(make, [randomBytes(MiB + 5), randomBytes(300 * KiB), randomBytes(2 * MiB + 1)]);
    assert.ok(names().includes(blobDataPath(digest)));
    assert.ok(!names().some((n) => n.includes('/_uploads/')), 'no upload is left behind');
    await make().delete('/docker');
  });

  it('redirects to a V4 signed URL valid 20 minutes unless storage.redirect.disable; the URL serves the bytes', async () => {
    const content = randomBytes(2 * MiB);
    await make().putContent('/signed/data', content);
    const url = await make().redirectURL('GET', '/signed/data');
    assert.ok(url !== null);
    assert.ok(url.startsWith(`${gcs.fake.url}/${bucket}/signed/data?`), url);
    const q = new URL(url).searchParams;
    assert.equal(q.get('X-Goog-Algorithm'), 'GOOG4-RSA-SHA256');
    assert.ok(q.get('X-Goog-Credential')!.startsWith(`${gcs.account.email}/`));
    assert.equal(q.get('X-Goog-Expires'), '1200');
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(content));
    const ranged = await fetch(url, { headers: { range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(content.subarray(10, 20)));
    const tampered = new URL(url);
    tampered.searchParams.set('X-Goog-Expires', '604800');
    assert.equal((await fetch(tampered)).status, 403, 'the signature covers the expiry');
    assert.equal((await fetch(url.replace('/signed/data?', '/signed/other?'))).status, 403, 'and the object');
    // Signed with a key the store does not know: refused.
    const stranger = makeServiceAccount(gcs.fake.tokenURL, 'stranger');
    const foreign = await GcsDriver.fromOptions({ bucket, credentials: stranger.key }, {}, gcs.env).redirectURL('GET', '/signed/data');
    assert.equal((await fetch(foreign!)).status, 403);
    assert.equal(await make({}, false).redirectURL('GET', '/signed/data'), null);
    assert.equal(await make().redirectURL('HEAD', '/signed/data'), null, 'the registry redirects GETs only; a V4 signature is for one method');
    await make().delete('/signed');
  });

  it('authenticates with keyfile or inline credentials through the key\'s token_uri, reusing the token; an unknown key is refused', async () => {
    const issued = gcs.fake.auth.issued;
    const fromFile = GcsDriver.fromOptions({ bucket, keyfile: gcs.writeKeyFile() }, {}, gcs.env);
    await fromFile.putContent('/auth/a', Buffer.from('a'));
    for (let i = 0; i < 5; i++) assert.deepEqual(await fromFile.getContent('/auth/a'), Buffer.from('a'));
    assert.equal(gcs.fake.auth.issued, issued + 1, 'one token for every request of the instance');
    const inline = GcsDriver.fromOptions({ bucket, credentials: { ...gcs.account.key } }, {}, gcs.env);
    assert.deepEqual(await inline.list('/auth'), ['/auth/a']);
    assert.equal(gcs.fake.auth.issued, issued + 2);

    const stranger = makeServiceAccount(gcs.fake.tokenURL, 'stranger');
    await assert.rejects(GcsDriver.fromOptions({ bucket, credentials: stranger.key }, {}, gcs.env).stat('/auth/a'), /token endpoint .* refused stranger@.*: invalid_grant: unknown service account/);
    const wrongAudience = makeServiceAccount(`${gcs.fake.url}/other-token`, 'wharf-test');
    wrongAudience.key.private_key = gcs.account.key.private_key;
    await assert.rejects(GcsDriver.fromOptions({ bucket, credentials: wrongAudience.key }, {}, gcs.env).stat('/auth/a'), /refused/);
    // A token the store stops accepting is dropped: reads get a new one at once, other calls on the next try.
    gcs.fake.auth.revokeAll();
    assert.deepEqual(await fromFile.getContent('/auth/a'), Buffer.from('a'));
    gcs.fake.auth.revokeAll();
    await assert.rejects(fromFile.stat('/auth/a'), (err: { code?: number }) => err.code === 401);
    assert.equal((await fromFile.stat('/auth/a')).size, 1);
    // The fake does check: no token, no access.
    assert.equal((await fetch(`${gcs.fake.url}/storage/v1/b/${bucket}/o`)).status, 401);
    await fromFile.delete('/auth');
  });

  it('a missing bucket is reported by name; maxconcurrency bounds the requests in flight', async () => {
    await assert.rejects(GcsDriver.fromOptions(gcs.options('wharf-no-such-bucket'), {}, gcs.env).stat('/x'), /storage.gcs.bucket: bucket "wharf-no-such-bucket" does not exist/);
    const d = make({ maxconcurrency: 25 });
    await d.putContent('/many/f', Buffer.from('x'));
    gcs.fake.maxInFlight = 0;
    gcs.fake.latencyMs = 20;
    try {
      await Promise.all(Array.from({ length: 120 }, (_, i) => d.stat(i % 2 ? '/many/f' : `/many/missing-${i}`).catch(() => undefined)));
    } finally {
      gcs.fake.latencyMs = 0;
    }
    assert.ok(gcs.fake.maxInFlight <= 25 && gcs.fake.maxInFlight >= 20, `at most 25 requests at once, and that many used (${gcs.fake.maxInFlight})`);
    await d.delete('/many');
  });
});
