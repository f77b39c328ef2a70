// A large object's bytes straight from the object store's socket to the client's.
//
// Node's HTTP client hands each 64 KiB socket read to JS as a fresh buffer, runs it through
// llhttp and a Readable, and the registry then pulls it through an async iterator: on a 1 GiB
// pull that cost Wharf two to three times Distribution's CPU per byte, CPU the object store on
// the same machine needed. Here the response is read with net's `onread`, so every read lands in
// one reused buffer and is copied into pooled 1 MiB writes; only the status line and headers are
// parsed. It serves presigned GET URLs (nothing to sign per request here) of known length, and
// leaves everything else (errors, redirects, chunked bodies) to the SDK path: `fallback`.

import { connect as netConnect, type Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

const READ_BUFFER = 1024 * 1024;
const WRITE_BATCH = 1024 * 1024;
const POOL_MAX = 8;
const HEADER_MAX = 64 * 1024;
const IDLE_TIMEOUT_MS = 60_000;

const writePool: Buffer[] = [];
const take = (): Buffer => writePool.pop() ?? Buffer.allocUnsafeSlow(WRITE_BATCH);
const give = (b: Buffer): void => {
  if (writePool.length < POOL_MAX) writePool.push(b);
};

export interface DirectGetOptions {
  /** Verify the store's TLS certificate (false for s3 `skipverify`). */
  rejectUnauthorized?: boolean;
  userAgent?: string;
}

/**
 * GET `url` with `Range: bytes=offset-(offset+length-1)` and stream exactly `length` bytes into
 * `destination`, then end it. Resolves `fallback` when nothing was written and the caller should
 * use its ordinary path (the store answered anything but 200/206 with that length, or could not
 * be reached); rejects once bytes have gone out and the transfer broke, leaving `destination` unended.
 */
export function sendDirect(url: URL, offset: number, length: number, destination: Writable, options: DirectGetOptions = {}): Promise<'sent' | 'fallback'> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const port = Number(url.port || (secure ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER);
    const onread = { buffer: readBuffer, callback: (n: number): boolean => (onData(n), true) };
    // tls.connect takes `onread` as net.connect does (Node's documents); its typings lack it.
    const socket: Socket = secure
      ? tlsConnect({ host, port, servername: /^[\d.:]+$/.test(host) ? undefined : host, rejectUnauthorized: options.rejectUnauthorized ?? true, onread } as ConnectionOptions)
      : netConnect({ host, port, onread });

    let head: Buffer | null = Buffer.alloc(0); // header bytes until the blank line; null once in the body
    let remaining = length;
    let filling = take();
    let fill = 0;
    let pending = 0; // writes handed to the destination and not yet called back
    let started = false; // a byte went to the destination: no more falling back
    let settled = false;

    const finish = (err: Error | null, result?: 'sent' | 'fallback'): void => {
      if (settled) return;
      settled = true;
      destination.off('close', onDestinationClose);
      destination.off('drain', onDrain);
      socket.destroy();
      // On failure the destination is left as it is, unended: the caller answers or drops it.
      if (err) reject(err);
      else resolve(result!);
    };
    const onDestinationClose = (): void => {
      if (remaining > 0 || pending > 0) finish(Object.assign(new Error('destination closed'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    };
    const onDrain = (): void => {
      if (!settled) socket.resume();
    };

    const flush = (): void => {
      const out = fill === filling.length ? filling : filling.subarray(0, fill);
      const buffer = filling;
      started = true;
      pending++;
      const more = destination.write(out, (err) => {
        pending--;
        if (err) return finish(err);
        give(buffer);
        if (remaining === 0 && pending === 0) end();
      });
      filling = take();
      fill = 0;
      if (!more) socket.pause();
    };
    const end = (): void => {
      destination.end(() => finish(null, 'sent'));
    };

    const body = (chunk: Buffer): void => {
      if (chunk.length > remaining) return finish(new Error(`object store sent more than the ${length} bytes asked for`));
      remaining -= chunk.length;
      for (let off = 0; off < chunk.length; ) {
        const n = chunk.copy(filling, fill, off);
        fill += n;
        off += n;
        if (fill === filling.length) flush();
      }
      if (remaining === 0) {
        if (fill > 0) flush();
        else give(filling);
        socket.destroy(); // Connection: close; nothing more is wanted from it
        if (pending === 0) end();
      }
    };

    const onHead = (chunk: Buffer): void => {
      head = Buffer.concat([head!, chunk]);
      const blank = head.indexOf('\r\n\r\n');
      if (blank < 0) {
        if (head.length > HEADER_MAX) finish(null, 'fallback');
        return;
      }
      const lines = head.subarray(0, blank).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
      const headers = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      const rest = head.subarray(blank + 4);
      head = null;
      const chunked = /chunked/i.test(headers.get('transfer-encoding') ?? '');
      if ((status !== 200 && status !== 206) || chunked || Number(headers.get('content-length')) !== length) return finish(null, 'fallback');
      if (status === 200 && offset !== 0) return finish(null, 'fallback'); // the store ignored the range
      if (rest.length > 0) body(rest);
    };

    function onData(n: number): void {
      if (settled || n <= 0) return;
      // The read buffer is reused by the next read: the header path copies, the body path copies.
      const chunk = readBuffer.subarray(0, n);
      if (head) onHead(Buffer.from(chunk));
      else body(chunk);
    }

    socket.setNoDelay(true);
    socket.setTimeout(IDLE_TIMEOUT_MS, () => {
      const err = Object.assign(new Error(`object store sent nothing for ${IDLE_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' });
      if (started) finish(err);
      else finish(null, 'fallback');
    });
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      const range = `bytes=${offset}-${offset + length - 1}`;
      const agent = options.userAgent ? `User-Agent: ${options.userAgent}\r\n` : '';
      socket.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nRange: ${range}\r\n${agent}Connection: close\r\n\r\n`);
    });
    socket.on('error', (err) => (started ? finish(err) : finish(null, 'fallback')));
    socket.on('close', () => {
      if (remaining > 0) started ? finish(Object.assign(new Error(`object store closed the connection with ${remaining} of ${length} bytes unsent`), { code: 'ECONNRESET' })) : finish(null, 'fallback');
    });
    destination.on('close', onDestinationClose);
    destination.on('drain', onDrain);
  });
}
