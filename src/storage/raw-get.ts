// HTTP GETs for large bodies, read without Node's HTTP client.
//
// Node's HTTP client hands each 64 KiB socket read to JS as a fresh buffer and runs it through
// llhttp and a Readable. On a gigabyte that is 16,000 buffers of external memory, and V8 answers
// external memory with a young-generation collection every few megabytes: on a 1 GiB s3 pull that
// cost Wharf two to three times Distribution's CPU per byte, and a pull through the proxy cache a
// fifth of its time in the garbage collector. Here the socket is read with net's `onread`: every
// read lands in one reused 1 MiB buffer that the consumer borrows. Only what large blob reads need
// is handled: a status line, headers, redirects, and a body framed by Content-Length; callers go
// back to their ordinary client for anything else (chunked bodies, errors to parse, 401s).

import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

const READ_BUFFER = 1024 * 1024;
const HEADER_MAX = 64 * 1024;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export interface RawGetOptions {
  headers?: Record<string, string>;
  /** Verify the server's TLS certificate (default true). */
  rejectUnauthorized?: boolean;
  /** Until the status line and headers have arrived. */
  responseTimeoutMs?: number;
  /** Silence in the middle of a body. */
  idleTimeoutMs?: number;
  /** Redirects to follow; Authorization is dropped when one leaves the origin. Default 0. */
  maxRedirects?: number;
}

export interface RawResponse {
  status: number;
  /** Header names in lower case. */
  headers: Map<string, string>;
  /** Where the answer came from, after redirects. */
  url: URL;
  /** The body's length when it is framed by Content-Length (the only framing `pump` reads); null otherwise. */
  length: number | null;
  /**
   * Hand the body to `onChunk`, chunk by chunk. A chunk is borrowed: it stays valid until the
   * promise `onChunk` returns settles (reading waits for it: backpressure), or until `onChunk`
   * returns when it returns nothing. Resolves after the last byte; rejects when the connection
   * breaks, goes silent, or `onChunk` throws.
   */
  pump(onChunk: (chunk: Buffer) => void | Promise<void>): Promise<void>;
  /** Close the connection (a body not wanted, or abandoned). */
  destroy(): void;
}

/** GET `url`; resolves when the headers are in. Rejects on network errors and timeouts. */
export async function rawGet(url: URL, options: RawGetOptions = {}): Promise<RawResponse> {
  let headers = options.headers ?? {};
  for (let hop = 0; ; hop++) {
    const res = await once(url, headers, options);
    const location = res.headers.get('location');
    if (!REDIRECTS.has(res.status) || !location || hop >= (options.maxRedirects ?? 0)) return res;
    res.destroy();
    const next = new URL(location, url);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') return res;
    // A blob redirected to object storage must not carry the registry's credentials there.
    if (next.origin !== url.origin) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
    url = next;
  }
}

function once(url: URL, headers: Record<string, string>, options: RawGetOptions): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || (secure ? 443 : 80));
    let head: Buffer | null = Buffer.alloc(0); // until the blank line after the headers
    let early: Buffer | null = null; // body bytes that came with the headers, before `pump`
    let remaining = 0;
    let consumer: ((chunk: Buffer) => void | Promise<void>) | null = null;
    let settle: { resolve(): void; reject(err: Error): void } | null = null;
    let failure: Error | null = null;
    let waiting = false; // a consumer's promise is pending
    let lent: Buffer | null = null; // the read buffer that promise still holds
    let queued: { chunk: Buffer; base: Buffer | null } | null = null; // a read that came meanwhile
    let paused = true; // reading stopped by us: until `pump`, and while a read is queued

    // Two read buffers: while the consumer holds one (its promise pending), the next read lands in
    // the other; only when that one arrives too does reading pause. A consumer that settles at once
    // (the common case) never makes the socket stop and start.
    const readBuffers = [Buffer.allocUnsafeSlow(READ_BUFFER), Buffer.allocUnsafeSlow(READ_BUFFER)] as const;
    const onread = {
      buffer: (): Buffer => (lent === readBuffers[0] ? readBuffers[1] : readBuffers[0]),
      callback: (n: number, buf: Uint8Array): boolean => (onData(buf as Buffer, n), true),
    };
    // tls.connect takes `onread` as net.connect does (Node's documents); its typings lack it.
    const socket: Socket = secure
      ? tlsConnect({ host, port, servername: /^[\d.:]+$/.test(host) ? undefined : host, rejectUnauthorized: options.rejectUnauthorized ?? true, onread } as ConnectionOptions)
      : netConnect({ host, port, onread });

    const fail = (err: Error): void => {
      if (failure) return;
      failure = err;
      socket.destroy();
      if (head) reject(err);
      else settle?.reject(err);
    };
    // Reading again after a pause: the idle timer starts afresh (a pause is the consumer's, not silence).
    const read = (): void => {
      paused = false;
      socket.setTimeout(options.idleTimeoutMs ?? 0);
      socket.resume();
    };
    const done = (): void => {
      socket.destroy();
      settle?.resolve();
      settle = null;
    };

    const deliver = (chunk: Buffer, base: Buffer | null): void => {
      if (chunk.length > remaining) return fail(new Error(`${url.origin} sent more than the ${remaining} body bytes it announced`));
      remaining -= chunk.length;
      let pending: void | Promise<void>;
      try {
        pending = consumer!(chunk);
      } catch (err) {
        return fail(err as Error);
      }
      if (!pending) {
        if (remaining === 0) done();
        return;
      }
      waiting = true;
      lent = base;
      pending.then(
        () => {
          waiting = false;
          lent = null;
          if (failure) return;
          if (queued) {
            const next = queued;
            queued = null;
            deliver(next.chunk, next.base);
          } else if (remaining === 0) done();
          if (paused && !waiting && !failure && remaining > 0) read();
        },
        (err: Error) => fail(err),
      );
    };

    const onHead = (chunk: Buffer): void => {
      head = Buffer.concat([head!, chunk]);
      const blank = head.indexOf('\r\n\r\n');
      if (blank < 0) {
        if (head.length > HEADER_MAX) fail(new Error(`${url.origin} sent more than ${HEADER_MAX} bytes of headers`));
        return;
      }
      const lines = head.subarray(0, blank).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
      if (!status) return fail(new Error(`${url.origin} did not answer in HTTP/1.1`));
      const fields = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      const rest = head.subarray(blank + 4);
      head = null;
      const declared = fields.get('content-length');
      const length = !fields.has('transfer-encoding') && declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : null;
      socket.pause(); // nothing more is read until somebody pumps
      if (rest.length > 0) early = rest;
      socket.setTimeout(options.idleTimeoutMs ?? 0);
      remaining = length ?? 0;
      resolve({
        status,
        headers: fields,
        url,
        length,
        pump(onChunk) {
          if (length === null) return Promise.reject(new Error(`${url.origin} sent a body not framed by Content-Length`));
          if (consumer) return Promise.reject(new Error('the body is already being read'));
          consumer = onChunk;
          return new Promise<void>((res, rej) => {
            settle = { resolve: res, reject: rej };
            if (failure) return rej(failure);
            if (remaining === 0) return done();
            if (early) {
              const first = early;
              early = null;
              deliver(first, null);
            }
            if (paused && !waiting && !failure && remaining > 0) read();
          });
        },
        destroy() {
          if (!failure) failure = new Error('closed');
          socket.destroy();
        },
      });
    };

    function onData(buf: Buffer, n: number): void {
      if (failure || n <= 0) return;
      const chunk = buf.subarray(0, n);
      if (head) onHead(Buffer.from(chunk)); // copied: the read buffers are reused
      else if (!consumer) early = early ? Buffer.concat([early, chunk]) : Buffer.from(chunk); // a read already under way when paused
      else if (!waiting) deliver(chunk, buf);
      else if (!queued) {
        queued = { chunk, base: buf };
        paused = true;
        socket.pause();
      } else queued = { chunk: Buffer.concat([queued.chunk, chunk]), base: null }; // not expected once paused; kept safe by copying
    }

    socket.setNoDelay(true);
    // A listener of its own: setTimeout(ms, cb) would add it once, and setTimeout(0, cb) remove it.
    socket.setTimeout(options.responseTimeoutMs ?? 0);
    socket.on('timeout', () => {
      if (!head && (waiting || !consumer)) {
        socket.setTimeout(options.idleTimeoutMs ?? 0); // the consumer is busy, the server is not silent: look again later
        return;
      }
      const what = head ? `did not answer within ${options.responseTimeoutMs} ms` : `went silent for ${options.idleTimeoutMs} ms in the middle of a response`;
      fail(Object.assign(new Error(`${url.origin} ${what}`), { code: 'ETIMEDOUT' }));
    });
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      let request = `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n`;
      for (const [k, v] of Object.entries(headers)) request += `${k}: ${v}\r\n`;
      socket.write(`${request}Connection: close\r\n\r\n`);
    });
    socket.on('error', (err) => fail(err));
    socket.on('close', () => {
      if (head || remaining > 0) fail(Object.assign(new Error(`${url.origin} closed the connection with ${head ? 'no answer' : `${remaining} body bytes unsent`}`), { code: 'ECONNRESET' }));
    });
  });
}
