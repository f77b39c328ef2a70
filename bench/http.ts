// Plain HTTP client helpers (node:http, keep-alive agents) and the registry operations built on them.
// Both servers are driven by exactly these functions.

import http from 'node:http';
import { pieces, CHUNK, type BigBlob, type SmallBlob } from './data.js';

export interface Resp {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Bytes received (equals body.length unless discarded). */
  received: number;
}

export interface ReqOpts {
  agent: http.Agent;
  method: string;
  url: string;
  headers?: Record<string, string | number>;
  /** Body pieces, written in order with back-pressure. */
  body?: Iterable<Buffer>;
  /** Do not keep the response body, only count it. */
  discard?: boolean;
}

export function newAgent(maxSockets: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'fifo' });
}

export function request(o: ReqOpts): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const u = new URL(o.url);
    const req = http.request(
      { agent: o.agent, method: o.method, host: u.hostname, port: u.port, path: u.pathname + u.search, headers: o.headers },
      (res) => {
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (d: Buffer) => {
          received += d.length;
          if (!o.discard) chunks.push(d);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), received }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (!o.body) {
      req.end();
      return;
    }
    const it = o.body[Symbol.iterator]();
    const pump = (): void => {
      for (;;) {
        const n = it.next();
        if (n.done) {
          req.end();
          return;
        }
        if (!req.write(n.value)) {
          req.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

export class HttpError extends Error {
  constructor(what: string, r: Resp) {
    super(`${what}: HTTP ${r.status} ${r.body.toString('utf8').slice(0, 300)}`);
  }
}

function expect(what: string, r: Resp, ...ok: number[]): Resp {
  if (!ok.includes(r.status)) throw new HttpError(what, r);
  return r;
}

function location(base: string, r: Resp): string {
  const loc = r.headers.location;
  if (!loc) throw new Error(`no Location header (HTTP ${r.status})`);
  return new URL(loc, base).toString();
}

function withDigest(loc: string, digest: string): string {
  const u = new URL(loc);
  u.searchParams.set('digest', digest);
  return u.toString();
}

export async function startUpload(agent: http.Agent, base: string, repo: string): Promise<string> {
  const r = expect('POST upload', await request({ agent, method: 'POST', url: `${base}/v2/${repo}/blobs/uploads/`, headers: { 'Content-Length': 0 } }), 202);
  return location(base, r);
}

/** POST, then a single PUT ?digest= carrying the whole body. */
export async function pushMonolithic(
  agent: http.Agent,
  base: string,
  repo: string,
  size: number,
  body: Iterable<Buffer>,
  digest: string,
): Promise<void> {
  const loc = await startUpload(agent, base, repo);
  expect(
    'PUT upload',
    await request({
      agent,
      method: 'PUT',
      url: withDigest(loc, digest),
      headers: { 'Content-Length': size, 'Content-Type': 'application/octet-stream' },
      body,
    }),
    201,
  );
}

export function pushSmallBlob(agent: http.Agent, base: string, repo: string, b: SmallBlob): Promise<void> {
  return pushMonolithic(agent, base, repo, b.data.length, [b.data], b.digest);
}

export function pushBigMonolithic(agent: http.Agent, base: string, repo: string, blob: BigBlob): Promise<void> {
  return pushMonolithic(agent, base, repo, blob.size, pieces(blob, 0, blob.size), blob.digest);
}

/** POST, PATCH in `chunk`-sized pieces with Content-Range, then PUT ?digest= with no body. */
export async function pushBigChunked(agent: http.Agent, base: string, repo: string, blob: BigBlob, chunk = CHUNK): Promise<void> {
  let loc = await startUpload(agent, base, repo);
  for (let off = 0; off < blob.size; off += chunk) {
    const end = Math.min(blob.size, off + chunk);
    const r = expect(
      `PATCH ${off}-${end - 1}`,
      await request({
        agent,
        method: 'PATCH',
        url: loc,
        headers: { 'Content-Length': end - off, 'Content-Range': `${off}-${end - 1}`, 'Content-Type': 'application/octet-stream' },
        body: pieces(blob, off, end),
      }),
      202,
    );
    loc = location(base, r);
  }
  expect('PUT (close chunked upload)', await request({ agent, method: 'PUT', url: withDigest(loc, blob.digest), headers: { 'Content-Length': 0 } }), 201);
}

/** GET a blob, discarding the body; returns bytes received. */
export async function pullBlob(agent: http.Agent, base: string, repo: string, digest: string): Promise<number> {
  const r = expect('GET blob', await request({ agent, method: 'GET', url: `${base}/v2/${repo}/blobs/${digest}`, discard: true }), 200);
  return r.received;
}

export async function headBlob(agent: http.Agent, base: string, repo: string, digest: string): Promise<number> {
  const r = await request({ agent, method: 'HEAD', url: `${base}/v2/${repo}/blobs/${digest}` });
  return r.status;
}

export async function putManifest(agent: http.Agent, base: string, repo: string, ref: string, manifest: Buffer, mediaType: string): Promise<void> {
  expect(
    'PUT manifest',
    await request({
      agent,
      method: 'PUT',
      url: `${base}/v2/${repo}/manifests/${ref}`,
      headers: { 'Content-Type': mediaType, 'Content-Length': manifest.length },
      body: [manifest],
    }),
    201,
  );
}

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** Run `tasks` with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
