// sendDirect (the s3 driver's large-blob read path) against real HTTP and HTTPS servers on loopback
// that answer the way object stores do, and some of the ways they fail.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { sendDirect } from '../../src/storage/direct-get.js';
import { makePki } from '../e2e/tls-certs.js';

const SIZE = 24 * 1024 * 1024 + 12345;
/** Byte i of the object is a function of i, so any slice can be made and checked. */
const slice = (from: number, to: number): Buffer => {
  const b = Buffer.allocUnsafe(to - from);
  for (let i = 0; i < b.length; i++) b[i] = ((from + i) * 31 + ((from + i) >> 12)) & 0xff;
  return b;
};
const whole = slice(0, SIZE);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let sentByServer = 0;
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
  const [from, to] = m ? [Number(m[1]), Number(m[2]) + 1] : [0, SIZE];
  const body = whole.subarray(from, to);
  const mode = new URL(req.url!, 'http://x').pathname;
  if (mode === '/missing') {
    res.writeHead(404, { 'Content-Type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code></Error>');
  } else if (mode === '/chunked') {
    res.writeHead(206, { 'Transfer-Encoding': 'chunked' });
    res.end(body);
  } else if (mode === '/ignores-range') {
    res.writeHead(200, { 'Content-Length': SIZE }).end(whole);
  } else if (mode === '/dies') {
    res.writeHead(206, { 'Content-Length': body.length });
    res.write(body.subarray(0, 3 * 1024 * 1024), () => res.destroy());
  } else {
    res.writeHead(206, { 'Content-Length': body.length, 'Content-Range': `bytes ${from}-${to - 1}/${SIZE}` });
    // Count what the kernel took, in 256 KiB steps, to see whether the reader holds the sender back.
    let off = 0;
    const next = (): void => {
      while (off < body.length) {
        const piece = body.subarray(off, off + 256 * 1024);
        off += piece.length;
        const more = res.write(piece, () => (sentByServer += piece.length));
        if (!more) return void res.once('drain', next);
      }
      res.end();
    };
    next();
  }
}

/** A destination that keeps a hash and a count, optionally taking `delayMs` per write. */
function sink(delayMs = 0): Writable & { received: number; digest: () => string } {
  const hash = createHash('sha256');
  const w = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      w.received += chunk.length;
      if (delayMs) setTimeout(cb, delayMs);
      else cb();
    },
  }) as Writable & { received: number; digest: () => string };
  w.received = 0;
  w.digest = () => hash.digest('hex');
  return w;
}

describe('sendDirect', () => {
  let plain: http.Server;
  let secure: https.Server;
  let base = '';
  let secureBase = '';
  before(async () => {
    plain = http.createServer(handler);
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    const pki = await makePki(mkdtempSync(join(tmpdir(), 'wharf-direct-get-')));
    secure = https.createServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) }, handler);
    await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
    secureBase = `https://127.0.0.1:${(secure.address() as AddressInfo).port}`;
  });
  after(() => {
    plain.closeAllConnections();
    plain.close();
    secure.closeAllConnections();
    secure.close();
  });

  it('streams exactly the asked range, from the start, the middle and to the end', async () => {
    for (const [offset, length] of [
      [0, SIZE],
      [5_000_001, 9 * 1024 * 1024],
      [SIZE - 8_000_000, 8_000_000],
    ]) {
      const out = sink();
      assert.equal(await sendDirect(new URL(`${base}/obj?X-Amz-Signature=abc`), offset, length, out), 'sent');
      assert.equal(out.received, length);
      assert.equal(out.digest(), sha(slice(offset, offset + length)));
      assert.ok(out.writableFinished, 'the destination is ended');
    }
  });

  it('streams over TLS, and verifies the certificate unless told not to', async () => {
    const out = sink();
    assert.equal(await sendDirect(new URL(`${secureBase}/obj`), 1000, 10 * 1024 * 1024, out, { rejectUnauthorized: false }), 'sent');
    assert.equal(out.digest(), sha(slice(1000, 1000 + 10 * 1024 * 1024)));
    const untrusted = sink();
    assert.equal(await sendDirect(new URL(`${secureBase}/obj`), 0, 1024, untrusted), 'fallback', 'a certificate from an unknown CA is refused');
    assert.equal(untrusted.received, 0);
  });

  it('falls back without writing anything for answers it does not handle', async () => {
    for (const mode of ['/missing', '/chunked', '/ignores-range']) {
      const out = sink();
      assert.equal(await sendDirect(new URL(`${base}${mode}`), 100, 1024, out), 'fallback', mode);
      assert.equal(out.received, 0, mode);
      assert.ok(!out.writableEnded && !out.destroyed, `${mode}: the destination is left for the fallback`);
    }
    const refused = sink();
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    assert.equal(await sendDirect(new URL(`http://127.0.0.1:${port}/obj`), 0, 10, refused), 'fallback', 'connection refused');
  });

  it('fails, leaving the destination unended, when the store drops the connection mid-body', async () => {
    const out = sink();
    await assert.rejects(sendDirect(new URL(`${base}/dies`), 0, SIZE, out), /closed the connection/);
    assert.ok(!out.writableEnded, 'never a short response that looks complete');
    assert.ok(out.received < SIZE);
  });

  it('stops reading from the store while the destination is slow (backpressure)', async () => {
    sentByServer = 0;
    const out = sink(15);
    let maxAhead = 0;
    const probe = setInterval(() => (maxAhead = Math.max(maxAhead, sentByServer - out.received)), 5);
    try {
      assert.equal(await sendDirect(new URL(`${base}/obj`), 0, SIZE, out), 'sent');
    } finally {
      clearInterval(probe);
    }
    assert.equal(out.digest(), sha(whole));
    // Socket buffers on both sides plus two 1 MiB batches; without backpressure the whole
    // 24 MiB would be sent within milliseconds while the sink takes over a second.
    assert.ok(maxAhead < 16 * 1024 * 1024, `the store got ${maxAhead} bytes ahead of the client`);
  });

  it('lets go of the store when the destination closes', async () => {
    const out = sink(5);
    const p = sendDirect(new URL(`${base}/obj`), 0, SIZE, out);
    setTimeout(() => out.destroy(), 50);
    await assert.rejects(p, (err: NodeJS.ErrnoException) => err.code === 'ERR_STREAM_PREMATURE_CLOSE');
    await new Promise((r) => setTimeout(r, 50));
    const open = await new Promise<number>((r) => plain.getConnections((_e, n) => r(n)));
    assert.equal(open, 0, 'the connection to the store is closed');
  });
});
