/**
 * The listening side: plain HTTP/1.1 (app.ts `listen`), TLS with HTTP/2 and HTTP/1.1 on the same port
 * (`http.tls`, `http.http2.disabled`), Let's Encrypt certificates (`http.tls.letsencrypt`), and
 * cleartext HTTP/2 with prior knowledge next to HTTP/1.1 (`http.h2c.enabled`). The request handler
 * from `createApp` serves every one of them unchanged.
 *
 * When one port must serve two kinds of connection (h2c next to HTTP/1.1, or the ACME TLS-ALPN-01
 * validation next to the registry), a plain TCP server reads the first bytes of each connection and
 * hands the socket to the server for that kind.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import * as http2 from 'node:http2';
import { existsSync, unlinkSync } from 'node:fs';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, type SecureContext, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { ACME_TLS_ALPN, AcmeCertificates, clientHelloALPN, type AcmeOptions, type KeyAndCert } from './tls/acme.js';
import { clientAllowed, type ResolvedTls } from './tls/options.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
/** The same handler, typed for node:http2's compatibility API (which mirrors IncomingMessage/ServerResponse). */
type H2Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

export interface TransportOptions {
  tls?: ResolvedTls;
  /** HTTP/2 over TLS (default on; `http.http2.disabled` turns it off). */
  http2: boolean;
  /** Cleartext HTTP/2 with prior knowledge next to HTTP/1.1 (`http.h2c.enabled`); TLS off only. */
  h2c: boolean;
  log: Logger;
  /** Let's Encrypt renewal window and check interval; internal (tests), not a configuration key. */
  acme?: Pick<AcmeOptions, 'renewBeforeMs' | 'checkEveryMs'>;
  /** `http.net`: `unix` makes `addr` a socket path. */
  net?: 'tcp' | 'unix';
  /** `http.draintimeout` (ms): on close, stop accepting and let requests in flight finish this long. */
  drainMs?: number;
}

export interface Transport {
  /** 0 on a unix socket. */
  port: number;
  scheme: 'http' | 'https';
  close(): Promise<void>;
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const HTTP1_TIMEOUTS = { keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 };
// Flow-control windows large enough that a single stream moves big blobs at full speed.
const H2_SETTINGS: http2.Settings = { initialWindowSize: 4 * 1024 * 1024 };
const H2_SESSION_WINDOW = 16 * 1024 * 1024;

/** Handlers read `Host`; an HTTP/2 request carries it in `:authority`. */
function forBothVersions(handler: Handler): Handler {
  return (req, res) => {
    if (req.httpVersionMajor === 2) {
      const authority = req.headers[':authority'];
      if (req.headers.host === undefined && typeof authority === 'string') req.headers.host = authority;
      // The compatibility API's socket is a proxy that forgets the peer once the stream ends, when the
      // access log line is written: hand out the connection's own socket (peer address read now).
      const socket = (req as unknown as http2.Http2ServerRequest).stream.session?.socket;
      if (socket) {
        void socket.remoteAddress;
        Object.defineProperty(req, 'socket', { value: socket, configurable: true });
      }
      stopUnreadBody((req as unknown as http2.Http2ServerRequest).stream);
    }
    handler(req, res);
  };
}

/**
 * A response sent while the client is still sending its body (an oversize manifest's 413, a PATCH to an
 * unknown upload's 404): HTTP/1.1 closes the connection (respond.ts); on HTTP/2 the stream is reset with
 * NO_ERROR once the response is out, which tells the client to stop sending (RFC 9113 §8.1) and frees
 * the stream. Node does this by itself only for a body no one started reading: a handler that read
 * part of it would leave the stream half-closed and the client blocked on flow control forever.
 */
function stopUnreadBody(stream: http2.ServerHttp2Stream): void {
  stream.once('finish', () => {
    // After the END_STREAM frame is queued, as Node's own graceful close does.
    setImmediate(() => {
      if (stream.destroyed || stream.closed || stream.state.remoteClose !== 0) return;
      stream.close(http2.constants.NGHTTP2_NO_ERROR);
    });
  });
}

function parseAddr(addr: string): { host?: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: i <= 0 ? undefined : addr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(addr.slice(i + 1)) };
}

function listenOn(server: NetServer, addr: string, net: 'tcp' | 'unix' = 'tcp'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? (a as AddressInfo).port : 0);
    };
    if (net === 'unix') server.listen(addr, done);
    else {
      const { host, port } = parseAddr(addr);
      server.listen(port, host, done);
    }
  });
}

/**
 * A socket file left by a registry that died is removed; one that a live process answers on is
 * not (listening then fails with EADDRINUSE, as Distribution's does).
 */
async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const probe = netConnect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (!alive) unlinkSync(path);
}

/** Counts requests in flight, for draining. */
function counting(handler: Handler): { handler: Handler; active: () => number } {
  let active = 0;
  return {
    handler: (req, res) => {
      active++;
      let done = false;
      const finish = () => {
        if (!done) {
          done = true;
          active--;
        }
      };
      res.once('finish', finish);
      res.once('close', finish);
      handler(req, res);
    },
    active: () => active,
  };
}

/** Wait until nothing is in flight or `ms` passed. */
async function drained(active: () => number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (active() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

function withH2Window(server: http2.Http2Server | http2.Http2SecureServer): void {
  server.on('session', (session: http2.ServerHttp2Session) => {
    session.once('connect', () => {
      try {
        session.setLocalWindowSize(H2_SESSION_WINDOW);
      } catch {
        /* session already gone */
      }
    });
  });
}

interface Route {
  server: NetServer;
  /** Node's HTTP/1 server reads the socket's handle directly: it gets the first bytes as a 'data' event. */
  http1?: boolean;
}

/** Reads the first bytes of a connection, then gives the socket (bytes put back) to `route(bytes)`; null: read more. */
function dispatcher(route: (first: Buffer) => Route | null, log: Logger): NetServer {
  return createNetServer((socket) => {
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), 30_000);
    const onError = () => clearTimeout(timer);
    socket.on('error', onError);
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const target = route(buf);
      if (target === null) {
        if (buf.length > 64 * 1024) socket.destroy();
        return;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      if (target.http1) {
        target.server.emit('connection', socket);
        socket.emit('data', buf);
        return;
      }
      socket.pause();
      socket.unshift(buf);
      target.server.emit('connection', socket);
    };
    socket.on('data', onData);
  }).on('error', (err) => log.error({ err }, 'listener error'));
}

function trackSockets(server: NetServer): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return sockets;
}

/**
 * Stop accepting at once; with `drainMs`, let requests in flight finish first (idle keep-alive
 * connections are closed now), then cut whatever is left.
 */
function closer(
  servers: NetServer[],
  sockets: Set<Socket>,
  onClose: () => void = () => undefined,
  drain?: { ms: number; active: () => number },
): () => Promise<void> {
  return async () => {
    onClose();
    const closed = servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve())));
    if (drain && drain.ms > 0) {
      for (const s of servers) (s as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      await drained(drain.active, drain.ms);
    }
    for (const s of sockets) s.destroy();
    await Promise.all(closed);
  };
}

export async function listenTransport(handler: Handler, addr: string, opts: TransportOptions): Promise<Transport> {
  const { tls, log } = opts;
  const net = opts.net ?? 'tcp';
  const inflight = counting(handler);
  const drain = { ms: opts.drainMs ?? 0, active: inflight.active };
  handler = inflight.handler;
  const h = forBothVersions(handler);
  if (net === 'unix') await removeStaleSocket(addr);
  if (!tls && !opts.h2c) {
    const server = createHttpServer(HTTP1_TIMEOUTS, handler);
    const sockets = trackSockets(server);
    const port = await listenOn(server, addr, net);
    return { port, scheme: 'http', close: closer([server], sockets, undefined, drain) };
  }
  if (!tls) {
    // h2c: prior-knowledge HTTP/2 and HTTP/1.1 on one port.
    const h1 = createHttpServer(HTTP1_TIMEOUTS, h);
    const h2 = http2.createServer({ settings: H2_SETTINGS }, h as unknown as H2Handler);
    withH2Window(h2);
    const front = dispatcher((b) => {
      const n = Math.min(b.length, H2_PREFACE.length);
      if (b.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) return n === H2_PREFACE.length ? { server: h2 } : null;
      return { server: h1, http1: true };
    }, log);
    const sockets = trackSockets(front);
    const port = await listenOn(front, addr, net);
    log.info({ tls: false, h2c: true }, 'cleartext HTTP/2 (h2c, prior knowledge) and HTTP/1.1 on one port');
    return { port, scheme: 'http', close: closer([front, h1, h2 as unknown as NetServer], sockets, undefined, drain) };
  }

  // TLS
  const le = tls.letsencrypt;
  let acmeCerts: AcmeCertificates | undefined;
  let contextNow: SecureContext | undefined;
  const secureOptions = { ...tls.options };
  if (le) {
    secureOptions.SNICallback = (_servername, cb) => {
      if (contextNow) return cb(null, contextNow);
      acmeCerts!.ready().then(() => cb(null, contextNow), (err: Error) => cb(err, undefined));
    };
  }
  const main: NetServer = opts.http2
    ? http2.createSecureServer({ ...secureOptions, allowHTTP1: true, settings: H2_SETTINGS }, h as unknown as H2Handler)
    : createHttpsServer({ ...secureOptions, ...HTTP1_TIMEOUTS }, h);
  if (opts.http2) {
    Object.assign(main, HTTP1_TIMEOUTS); // for the HTTP/1.1 connections it serves
    withH2Window(main as http2.Http2SecureServer);
  }
  main.on('tlsClientError', (err: Error, socket: TLSSocket) => {
    log.debug({ err: err.message, remote: socket.remoteAddress }, 'TLS handshake failed');
  });
  if (tls.clientAuth !== 'off' && tls.clientAuth !== 'require-and-verify-client-cert') {
    main.on('secureConnection', (socket: TLSSocket) => {
      if (!clientAllowed(tls.clientAuth, socket)) {
        log.info({ remote: socket.remoteAddress, clientauth: tls.clientAuth }, 'client certificate refused');
        socket.destroy();
      }
    });
  }

  let listener: NetServer = main;
  const extra: NetServer[] = [];
  if (le) {
    const install = (kc: KeyAndCert) => {
      contextNow = createSecureContext({ ...tls.options, ...kc });
      (main as unknown as { setSecureContext(o: object): void }).setSecureContext({ ...tls.options, ...kc });
    };
    acmeCerts = new AcmeCertificates({ ...le, ...opts.acme, log }, install);
    const challenges = createTlsServer({
      ALPNProtocols: [ACME_TLS_ALPN],
      SNICallback: (servername, cb) => {
        const c = acmeCerts!.challenge(servername);
        if (!c) return cb(new Error(`no ACME challenge for ${servername}`), undefined);
        cb(null, createSecureContext(c));
      },
    });
    challenges.on('secureConnection', (s: TLSSocket) => {
      log.info({ servername: s.servername, remote: s.remoteAddress }, 'letsencrypt: answered a TLS-ALPN-01 validation');
      s.end();
    });
    challenges.on('tlsClientError', (err: Error) => log.debug({ err: err.message }, 'ACME TLS-ALPN-01 handshake failed'));
    extra.push(challenges);
    listener = dispatcher((b) => {
      const alpn = clientHelloALPN(b);
      if (alpn === null) return null;
      return { server: alpn.includes(ACME_TLS_ALPN) ? challenges : main };
    }, log);
  }
  const sockets = trackSockets(listener);
  const port = await listenOn(listener, addr, net);
  acmeCerts?.start();
  const mtls = tls.clientAuth === 'off' ? 'off' : tls.clientAuth;
  log.info(
    { tls: true, minimumtls: tls.minimumtls, http2: opts.http2, mtls, letsencrypt: le ? le.hosts : undefined },
    `TLS on: minimum ${tls.minimumtls}, HTTP/2 ${opts.http2 ? 'on' : 'off'}, client certificates ${mtls === 'off' ? 'not requested' : `${mtls} (mutual TLS)`}` +
      (le ? `, certificate from ACME for ${le.hosts.join(', ')}` : ''),
  );
  return {
    port,
    scheme: 'https',
    close: closer(listener === main ? [main] : [listener, main, ...extra], sockets, () => acmeCerts?.stop(), drain),
  };
}
