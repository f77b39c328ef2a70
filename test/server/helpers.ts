// A small in-process client for the HTTP API tests: start Wharf on 127.0.0.1:0 over a temp
// data dir (or the inmemory driver), send raw requests (the path goes on the wire exactly as
// written, so `..`, `%2F` and `//` reach the server untouched), and push blobs and manifests.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { startRegistry, type RegistrySettings, type StartedRegistry } from '../../src/cli/start.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

/** The Accept header a modern client (containerd, docker) sends for manifests. */
export const ACCEPT_ALL = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(', ');

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export interface TestServer {
  url: string;
  port: number;
  /** The filesystem rootdirectory (undefined for inmemory). */
  dir?: string;
  started: StartedRegistry;
  settings: RegistrySettings;
  close(): Promise<void>;
}

export interface ServerOpts {
  deleteEnabled?: boolean;
  /** Reuse an existing rootdirectory (a restart); a fresh temp dir otherwise. */
  dir?: string;
  inmemory?: boolean;
  catalogMaxEntries?: number;
  /** Keep the data dir on close (the caller removes it). */
  keepDir?: boolean;
  prefix?: string;
  relativeURLs?: boolean;
  host?: string;
  headers?: Record<string, string[]>;
}

export function makeSettings(opts: ServerOpts & { dir?: string }): RegistrySettings {
  return {
    storage: opts.inmemory
      ? { name: 'inmemory', options: {} }
      : { name: 'filesystem', options: { rootdirectory: opts.dir } },
    deleteEnabled: opts.deleteEnabled ?? true,
    http: {
      addr: '127.0.0.1:0',
      host: opts.host,
      prefix: opts.prefix ?? '',
      relativeurls: opts.relativeURLs ?? false,
      headers: opts.headers ?? {},
    },
    log: { level: 'silent', formatter: 'json', accessLog: false, fields: {} },
    catalogMaxEntries: opts.catalogMaxEntries ?? 1000,
    urlsAllow: [],
    urlsDeny: [],
  };
}

export async function startServer(opts: ServerOpts = {}): Promise<TestServer> {
  const dir = opts.inmemory ? undefined : (opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-api-')));
  const settings = makeSettings({ ...opts, dir });
  const started = await startRegistry(settings);
  const ownsDir = !opts.inmemory && !opts.dir && !opts.keepDir;
  return {
    url: started.url,
    port: started.port,
    dir,
    started,
    settings,
    async close() {
      await started.close();
      if (ownsDir && dir) await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json(): any;
}

export interface ReqOpts {
  headers?: Record<string, string | number | string[]>;
  body?: Buffer | string;
  /** Send the body in these pieces with chunked transfer encoding (no Content-Length). */
  chunks?: (Buffer | string)[];
}

/** One request on a fresh connection; `rawPath` goes on the wire verbatim. */
export function request(server: { port: number }, method: string, rawPath: string, opts: ReqOpts = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number | string[]> = { ...(opts.headers ?? {}) };
    const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body;
    if (body !== undefined && !hasHeader(headers, 'content-length')) headers['Content-Length'] = body.length;
    const req = http.request({ host: '127.0.0.1', port: server.port, method, path: rawPath, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const buf = Buffer.concat(parts);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: buf,
          text: buf.toString('utf8'),
          json: () => JSON.parse(buf.toString('utf8')),
        });
      });
    });
    req.on('error', reject);
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else {
      req.end(body);
    }
  });
}

function hasHeader(headers: Record<string, unknown>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

/** The single error code of an error envelope, checking the envelope's shape on the way. */
export function errorCode(res: Res): string {
  assert.match(String(res.headers['content-type']), /^application\/json/, `error Content-Type for ${res.status}: ${res.text}`);
  const doc = res.json();
  assert.ok(Array.isArray(doc.errors) && doc.errors.length >= 1, `error envelope: ${res.text}`);
  for (const e of doc.errors) {
    assert.equal(typeof e.code, 'string');
    assert.equal(typeof e.message, 'string');
  }
  return doc.errors[0].code;
}

/** Assert an error status and code (and the API version header every response carries). */
export function assertError(res: Res, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(errorCode(res), code, res.text);
  assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
}

/** The server still answers GET /v2/ with 200. */
export async function assertAlive(server: { port: number }): Promise<void> {
  const res = await request(server, 'GET', '/v2/');
  assert.equal(res.status, 200);
}

/** Upload a blob monolithically (POST then PUT ?digest=); returns its digest. */
export async function pushBlob(server: { port: number }, name: string, content: Buffer | string): Promise<string> {
  const data = typeof content === 'string' ? Buffer.from(content) : content;
  const digest = sha256(data);
  const start = await request(server, 'POST', `/v2/${name}/blobs/uploads/`);
  assert.equal(start.status, 202, start.text);
  const put = await request(server, 'PUT', withQuery(locationPath(start), `digest=${digest}`), {
    body: data,
    headers: { 'Content-Type': 'application/octet-stream' },
  });
  assert.equal(put.status, 201, put.text);
  return digest;
}

/** Path and query of a Location header (absolute or relative). */
export function locationPath(res: Res): string {
  const loc = res.headers.location;
  assert.ok(loc, `no Location header (status ${res.status}: ${res.text})`);
  const u = new URL(loc, 'http://placeholder');
  return u.pathname + u.search;
}

export function withQuery(p: string, query: string): string {
  return p + (p.includes('?') ? '&' : '?') + query;
}

export async function putManifest(
  server: { port: number },
  name: string,
  reference: string,
  content: Buffer | string,
  mediaType: string,
): Promise<Res> {
  return request(server, 'PUT', `/v2/${name}/manifests/${reference}`, { body: content, headers: { 'Content-Type': mediaType } });
}

export interface PushedImage {
  digest: string;
  content: Buffer;
  configDigest: string;
  layerDigest: string;
  size: number;
}

/**
 * Push a one-layer image: config, layer, manifest (by `reference`, a tag or 'digest').
 * The manifest bytes keep the given JSON exactly (unusual spacing is preserved).
 */
export async function pushImage(
  server: { port: number },
  name: string,
  reference: string,
  opts: { mediaType?: string; seed?: string; extra?: Record<string, unknown>; platform?: string } = {},
): Promise<PushedImage> {
  const mediaType = opts.mediaType ?? OCI_MANIFEST;
  const docker = mediaType === DOCKER_MANIFEST;
  const seed = opts.seed ?? randomBytes(8).toString('hex');
  const config = Buffer.from(JSON.stringify({ architecture: opts.platform ?? 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }));
  const layer = Buffer.from(`layer ${seed}`);
  const configDigest = await pushBlob(server, name, config);
  const layerDigest = await pushBlob(server, name, layer);
  const doc = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: docker ? DOCKER_CONFIG : OCI_CONFIG, digest: configDigest, size: config.length },
    layers: [{ mediaType: docker ? DOCKER_LAYER : OCI_LAYER, digest: layerDigest, size: layer.length }],
    ...(opts.extra ?? {}),
  };
  const content = Buffer.from(JSON.stringify(doc, null, 3));
  const digest = sha256(content);
  const res = await putManifest(server, name, reference === 'digest' ? digest : reference, content, mediaType);
  assert.equal(res.status, 201, res.text);
  assert.equal(res.headers['docker-content-digest'], digest);
  return { digest, content, configDigest, layerDigest, size: content.length };
}

/** Every file under `dir`, relative, sorted (for "nothing left behind" checks). */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out.push(`${r}/`);
        walk(path.join(d, e.name), r);
      } else out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

/** The storage root inside a filesystem rootdirectory. */
export function storageRoot(dir: string): string {
  return path.join(dir, 'docker', 'registry', 'v2');
}

/** A digest nobody pushed. */
export function randomDigest(): string {
  return sha256(randomBytes(16));
}

/** Files only (no directories) under `dir`: empty directories are not content. */
export function listOnlyFiles(dir: string): string[] {
  return listFiles(dir).filter((f) => !f.endsWith('/'));
}

/** Start an upload; returns the Location path (with any query) and the id. */
export async function startUpload(server: { port: number }, name: string): Promise<{ location: string; id: string; res: Res }> {
  const res = await request(server, 'POST', `/v2/${name}/blobs/uploads/`);
  assert.equal(res.status, 202, res.text);
  return { location: locationPath(res), id: String(res.headers['docker-upload-uuid']), res };
}
