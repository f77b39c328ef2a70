/**
 * The kinds of health check Distribution offers (`health.storagedriver`, `health.file`,
 * `health.http`, `health.tcp`). Each resolves when healthy and rejects with an Error whose message
 * is what `/debug/health` shows, worded as Distribution's so monitoring sees the same text; the
 * underlying reason, when there is one, is the error's `cause` (logged).
 */
import { stat } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { isNotFound, type StorageDriver } from '../storage/driver.js';

export type Check = () => Promise<void>;

/**
 * The storage backend answers: listing '/' succeeds, or finds nothing (an empty store). A listing
 * rather than Distribution's stat of '/', which some drivers answer without asking the backend.
 */
export function storageDriverCheck(driver: StorageDriver): Check {
  return async () => {
    try {
      await driver.list('/');
    } catch (err) {
      if (isNotFound(err)) return;
      throw err instanceof Error ? err : new Error(String(err));
    }
  };
}

/** Unhealthy while the file exists: creating it takes the instance out of rotation. */
export function fileCheck(file: string): Check {
  const path = resolve(file);
  return async () => {
    try {
      await stat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    throw new Error('file exists');
  };
}

const MAX_REDIRECTS = 10;

/** A HEAD request (redirects followed) must answer `statusCode` within `timeoutMs`. */
export function httpCheck(uri: string, statusCode: number, timeoutMs: number, headers: Record<string, readonly string[]>): Check {
  return async () => {
    let url = new URL(uri);
    for (let hops = 0; ; hops++) {
      const got = await head(url, headers, timeoutMs).catch((err: Error) => {
        throw new Error(`error while checking: ${uri}`, { cause: err });
      });
      if (got.location && got.status >= 300 && got.status < 400 && hops < MAX_REDIRECTS) {
        url = new URL(got.location, url);
        continue;
      }
      if (got.status !== statusCode) throw new Error(`downstream service returned unexpected status: ${got.status}`);
      return;
    }
  };
}

function head(url: URL, headers: Record<string, readonly string[]>, timeoutMs: number): Promise<{ status: number; location?: string }> {
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolvePromise, reject) => {
    const req = request(url, { method: 'HEAD', headers: headers as Record<string, string[]>, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolvePromise({ status: res.statusCode ?? 0, location: res.headers.location });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** A TCP connection to `addr` ("host:port") opens within `timeoutMs`. */
export function tcpCheck(addr: string, timeoutMs: number): Check {
  const { host, port } = splitHostPort(addr);
  return () =>
    new Promise<void>((resolvePromise, reject) => {
      const socket = connect({ host, port });
      const fail = (cause: Error) => {
        socket.destroy();
        reject(new Error(`connection to ${addr} failed`, { cause }));
      };
      socket.setTimeout(timeoutMs, () => fail(new Error(`no connection within ${timeoutMs} ms`)));
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.destroy();
        resolvePromise();
      });
    });
}

/** "host:port", "[v6]:port" or ":port" (the local host); null when it is not one of those. */
export function parseHostPort(addr: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? (m[2] || 'localhost'), port };
}

function splitHostPort(addr: string): { host: string; port: number } {
  const parsed = parseHostPort(addr);
  if (!parsed) throw new Error(`expected HOST:PORT, got ${JSON.stringify(addr)}`);
  return parsed;
}
