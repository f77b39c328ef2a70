// rawGet against real HTTP servers on loopback: redirects and credentials, bodies that arrive with
// the headers, consumers that make it wait, and servers that go silent or lie about the length.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { rawGet } from '../../src/storage/raw-get.js';

const body = Buffer.alloc(5 * 1024 * 1024 + 7);
for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 10)) & 0xff;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; base: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('rawGet', () => {
  let origin: { server: http.Server; base: string };
  let elsewhere: { server: http.Server; base: string };
  const seenAuth: Record<string, string | undefined> = {};
  before(async () => {
    elsewhere = await listen((req, res) => {
      seenAuth.elsewhere = req.headers.authorization;
      res.writeHead(200, { 'Content-Length': body.length }).end(body);
    });
    origin = await listen((req, res) => {
      const path = req.url!;
      if (path === '/blob') {
        seenAuth.origin = req.headers.authorization;
        res.writeHead(200, { 'Content-Length': body.length }).end(body);
      } else if (path === '/here') res.writeHead(307, { Location: '/blob' }).end();
      else if (path === '/away') res.writeHead(307, { Location: `${elsewhere.base}/cdn/blob?sig=1` }).end();
      else if (path === '/small') res.writeHead(200, { 'Content-Length': 5 }).end('hello'); // body in the headers' packet
      else if (path === '/stall') {
        res.writeHead(200, { 'Content-Length': body.length });
        res.write(body.subarray(0, 1000)); // then nothing
      } else if (path === '/short') {
        res.writeHead(200, { 'Content-Length': body.length });
        res.write(body.subarray(0, 1000), () => res.destroy());
      } else if (path === '/chunked') {
        res.writeHead(200, { 'Transfer-Encoding': 'chunked' });
        res.end('abc');
      } else res.writeHead(401, { 'WWW-Authenticate': 'Bearer realm="x"' }).end();
    });
  });
  after(() => {
    for (const s of [origin.server, elsewhere.server]) {
      s.closeAllConnections();
      s.close();
    }
  });

  const collect = async (url: string, opts: Parameters<typeof rawGet>[1] = {}): Promise<{ status: number; data: Buffer; final: string }> => {
    const res = await rawGet(new URL(url), opts);
    const parts: Buffer[] = [];
    await res.pump((c) => void parts.push(Buffer.from(c)));
    return { status: res.status, data: Buffer.concat(parts), final: res.url.href };
  };

  it('reads a body framed by Content-Length, including one that came with the headers', async () => {
    const big = await collect(`${origin.base}/blob`);
    assert.equal(big.status, 200);
    assert.equal(sha(big.data), sha(body));
    const small = await collect(`${origin.base}/small`);
    assert.equal(small.data.toString(), 'hello');
  });

  it('follows redirects, keeping credentials on the origin and dropping them elsewhere', async () => {
    const auth = { Authorization: 'Bearer secret' };
    const same = await collect(`${origin.base}/here`, { headers: auth, maxRedirects: 5 });
    assert.equal(same.final, `${origin.base}/blob`);
    assert.equal(seenAuth.origin, 'Bearer secret');
    const away = await collect(`${origin.base}/away`, { headers: auth, maxRedirects: 5 });
    assert.equal(away.final, `${elsewhere.base}/cdn/blob?sig=1`);
    assert.equal(sha(away.data), sha(body));
    assert.equal(seenAuth.elsewhere, undefined, 'the registry token does not go to another host');
    const unfollowed = await rawGet(new URL(`${origin.base}/away`));
    assert.equal(unfollowed.status, 307, 'redirects are followed only when asked');
    unfollowed.destroy();
  });

  it('hands back other answers as they are, and refuses to pump a chunked body', async () => {
    const denied = await rawGet(new URL(`${origin.base}/private`));
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get('www-authenticate'), 'Bearer realm="x"');
    denied.destroy();
    const chunked = await rawGet(new URL(`${origin.base}/chunked`));
    assert.equal(chunked.length, null);
    await assert.rejects(chunked.pump(() => undefined), /not framed by Content-Length/);
    chunked.destroy();
  });

  it('waits for a slow consumer without calling it silence, and lends each chunk until its promise settles', async () => {
    const res = await rawGet(new URL(`${origin.base}/blob`), { idleTimeoutMs: 100 });
    const hash = createHash('sha256');
    let calls = 0;
    await res.pump(async (chunk) => {
      const copy = Buffer.from(chunk);
      if (calls++ < 4) await new Promise((r) => setTimeout(r, 150)); // longer than the idle timeout
      assert.ok(copy.equals(chunk), 'the borrowed chunk did not change while the consumer held it');
      hash.update(chunk);
    });
    assert.equal(hash.digest('hex'), sha(body));
  });

  it('fails when the server goes silent or closes early', async () => {
    const stalled = await rawGet(new URL(`${origin.base}/stall`), { idleTimeoutMs: 200 });
    await assert.rejects(stalled.pump(() => undefined), /went silent for 200 ms/);
    const short = await rawGet(new URL(`${origin.base}/short`));
    await assert.rejects(short.pump(() => undefined), (err: NodeJS.ErrnoException) => err.code === 'ECONNRESET' && /body bytes unsent/.test(err.message));
  });

  it('fails when nothing answers in time, or nothing listens', async () => {
    const silent = await listen(() => undefined);
    await assert.rejects(rawGet(new URL(`${silent.base}/x`), { responseTimeoutMs: 150 }), /did not answer within 150 ms/);
    silent.server.closeAllConnections();
    silent.server.close();
    await assert.rejects(rawGet(new URL(`${silent.base}/x`)), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
  });
});
