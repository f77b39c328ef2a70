/**
 * A fake Google Cloud Storage server for the gcs driver's tests, written from Google's published
 * JSON API and OAuth 2.0 service-account documents (no emulator serves resumable sessions chunk
 * by chunk, checks tokens and checks V4 signatures; Firebase's storage emulator does none of the
 * three). It is a fake: one process, state in memory, bytes in files under `dir`.
 *
 * What it serves (and checks):
 * - POST /token — the service-account token endpoint (auth.ts): signed JWT in, bearer token out;
 * - /storage/v1/b/BUCKET[/o[/OBJECT[/rewriteTo/b/BUCKET/o/OBJECT]]] — bucket and object metadata,
 *   media (alt=media, one Range), listing (prefix, delimiter, maxResults, pageToken), delete,
 *   rewrite (in steps of `rewriteStep` bytes with a rewriteToken, as large rewrites are);
 *   every request needs a bearer token the token endpoint issued;
 * - /upload/storage/v1/b/BUCKET/o — uploads and resumable sessions (uploads.ts);
 * - GET/HEAD /BUCKET/OBJECT — the XML API download path that V4 signed URLs name; the signature
 *   is verified (or a bearer token is required).
 * Every request is recorded (method, path, status) for tests to look at.
 */
import fs from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeAuth } from './auth.js';
import { objectResource, readBody, sendError, sendJSON, sendMedia, sendXMLError } from './http.js';
import { FakeStore, type StoredObject } from './store.js';
import { sessionRequest, startUpload, type Faults } from './uploads.js';

export interface FakeGcsOptions {
  /** Where object bytes go (removed by close()). */
  dir: string;
  /** Bytes a rewrite call copies before answering done: false with a token. Default 1 MiB. */
  rewriteStep?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
}

interface RewriteJob {
  source: StoredObject;
  done: number;
}

export class FakeGcs {
  readonly store: FakeStore;
  readonly auth: FakeAuth;
  readonly faults: Faults = { shortChunks: 0, lostAnswers: 0 };
  readonly requests: RecordedRequest[] = [];
  /** Requests being served now, and the most at once (what a concurrency limit bounds). */
  inFlight = 0;
  maxInFlight = 0;
  /** Milliseconds every request waits before it is served (a slow store, so that requests overlap). */
  latencyMs = 0;
  private readonly rewrites = new Map<string, RewriteJob>();
  private readonly rewriteStep: number;

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    private readonly dir: string,
    rewriteStep: number,
  ) {
    this.store = new FakeStore(dir);
    this.auth = new FakeAuth(`${url}/token`);
    this.rewriteStep = rewriteStep;
  }

  static async start(opts: FakeGcsOptions): Promise<FakeGcs> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const fake = new FakeGcs(server, `http://127.0.0.1:${port}`, opts.dir, opts.rewriteStep ?? 1024 * 1024);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      fake.maxInFlight = Math.max(fake.maxInFlight, ++fake.inFlight);
      res.on('close', () => fake.inFlight--);
      res.on('finish', () => fake.requests.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0], status: res.statusCode }));
      fake.handle(req, res).catch((err: Error) => sendError(res, 500, `fake-gcs: ${err.message}`));
    });
    return fake;
  }

  get tokenURL(): string {
    return this.auth.tokenURL;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private origin(req: IncomingMessage): string {
    return `http://${req.headers.host ?? new URL(this.url).host}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    const url = new URL(req.url ?? '/', this.url);
    const rawPath = (req.url ?? '/').split('?')[0];
    const segments = rawPath.split('/').slice(1).map((s) => decodeURIComponent(s));
    const method = req.method ?? 'GET';

    if (rawPath === '/token' && method === 'POST') {
      const { status, body } = this.auth.exchange(new URLSearchParams((await readBody(req, 1 << 16)).toString('utf8')));
      return sendJSON(res, status, body);
    }
    const ctx = { store: this.store, faults: this.faults, origin: (r: IncomingMessage) => this.origin(r) };
    if (segments[0] === 'upload' && segments[1] === 'storage' && segments[2] === 'v1' && segments[3] === 'b' && segments[5] === 'o' && segments.length === 6) {
      const uploadId = url.searchParams.get('upload_id');
      if (uploadId) return sessionRequest(ctx, req, res, uploadId); // the session URI is its own credential
      if (method !== 'POST') return sendError(res, 405, `${method} not allowed`);
      if (!this.authorized(req, res)) return;
      if (!this.store.hasBucket(segments[4])) return sendError(res, 404, 'The specified bucket does not exist.');
      return startUpload(ctx, req, res, segments[4], url.searchParams);
    }
    if (segments[0] === 'storage' && segments[1] === 'v1' && segments[2] === 'b' && segments.length >= 4) {
      if (!this.authorized(req, res)) return;
      return this.jsonAPI(req, res, segments.slice(3), url.searchParams);
    }
    if ((method === 'GET' || method === 'HEAD') && segments.length >= 2 && segments[0] !== '') {
      return this.xmlDownload(req, res, rawPath, segments, url.searchParams);
    }
    sendError(res, 404, `Not Found: ${method} ${rawPath}`);
  }

  private authorized(req: IncomingMessage, res: ServerResponse): boolean {
    const verdict = this.auth.bearer(req.headers.authorization);
    if (verdict.ok) return true;
    sendError(res, 401, verdict.message);
    return false;
  }

  /** /storage/v1/b/... with `rest` = [bucket, 'o', object, ...]. */
  private async jsonAPI(req: IncomingMessage, res: ServerResponse, rest: string[], query: URLSearchParams): Promise<void> {
    const method = req.method ?? 'GET';
    const [bucket, o, name, action, b2, dstBucket, o2, dstName] = rest;
    if (!this.store.hasBucket(bucket)) return sendError(res, 404, 'The specified bucket does not exist.');
    if (rest.length === 1 && method === 'GET') {
      return sendJSON(res, 200, { kind: 'storage#bucket', id: bucket, name: bucket, location: 'US', storageClass: 'STANDARD' });
    }
    if (o !== 'o') return sendError(res, 404, 'Not Found');
    if (rest.length === 2 && method === 'GET') {
      const maxResults = query.has('maxResults') ? Number(query.get('maxResults')) : undefined;
      const page = this.store.list(bucket, {
        prefix: query.get('prefix') ?? undefined,
        delimiter: query.get('delimiter') ?? undefined,
        maxResults,
        pageToken: query.get('pageToken') ?? undefined,
      });
      return sendJSON(res, 200, {
        kind: 'storage#objects',
        ...(page.items.length > 0 ? { items: page.items.map((i) => objectResource(i, this.origin(req))) } : {}),
        ...(page.prefixes.length > 0 ? { prefixes: page.prefixes } : {}),
        ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
      });
    }
    if (rest.length === 3) {
      const object = this.store.get(bucket, name);
      if (!object) return sendError(res, 404, `No such object: ${bucket}/${name}`);
      if (method === 'GET' && query.get('alt') === 'media') {
        return sendMedia(req, res, object, () => sendError(res, 416, 'The requested range cannot be satisfied.', { 'content-range': `bytes */${object.size}` }));
      }
      if (method === 'GET') return sendJSON(res, 200, objectResource(object, this.origin(req)));
      if (method === 'DELETE') {
        this.store.delete(bucket, name);
        res.writeHead(204);
        res.end();
        return;
      }
    }
    if (rest.length === 8 && action === 'rewriteTo' && b2 === 'b' && o2 === 'o' && method === 'POST') {
      return this.rewrite(req, res, bucket, name, dstBucket, dstName, query);
    }
    sendError(res, 501, `fake-gcs does not implement ${method} /storage/v1/b/${rest.join('/')}`);
  }

  /** objects.rewrite: copies `rewriteStep` bytes per call; the object appears when the last call is done. */
  private async rewrite(req: IncomingMessage, res: ServerResponse, bucket: string, name: string, dstBucket: string, dstName: string, query: URLSearchParams): Promise<void> {
    const body = await readBody(req, 1 << 20);
    if (!this.store.hasBucket(dstBucket)) return sendError(res, 404, 'The specified bucket does not exist.');
    const token = query.get('rewriteToken');
    let job: RewriteJob | undefined;
    if (token) {
      job = this.rewrites.get(token);
      if (!job) return sendError(res, 400, 'Invalid rewrite token.');
    } else {
      const source = this.store.get(bucket, name);
      if (!source) return sendError(res, 404, `No such object: ${bucket}/${name}`);
      job = { source, done: 0 };
    }
    if (this.store.get(bucket, name)?.generation !== job.source.generation) {
      return sendError(res, 412, 'The source object changed during the rewrite.');
    }
    if (token) this.rewrites.delete(token);
    job.done = Math.min(job.source.size, job.done + this.rewriteStep);
    const progress = { kind: 'storage#rewriteResponse', totalBytesRewritten: String(job.done), objectSize: String(job.source.size) };
    if (job.done < job.source.size) {
      const next = `rw-${Math.random().toString(36).slice(2)}`;
      this.rewrites.set(next, job);
      return sendJSON(res, 200, { ...progress, done: false, rewriteToken: next });
    }
    const meta = body.length > 0 ? (JSON.parse(body.toString('utf8')) as { contentType?: string; metadata?: Record<string, string> }) : {};
    const file = this.store.newFile();
    fs.copyFileSync(job.source.file, file);
    const copy = await this.store.commit(dstBucket, dstName, file, {
      contentType: meta.contentType ?? job.source.contentType,
      metadata: meta.metadata ?? job.source.metadata,
    });
    sendJSON(res, 200, { ...progress, done: true, resource: objectResource(copy, this.origin(req)) });
  }

  /** GET/HEAD /BUCKET/OBJECT: the XML API path of signed URLs. */
  private async xmlDownload(req: IncomingMessage, res: ServerResponse, rawPath: string, segments: string[], query: URLSearchParams): Promise<void> {
    if (query.has('X-Goog-Signature')) {
      const verdict = this.auth.signedURL(req.method ?? 'GET', rawPath, query, req.headers);
      if (!verdict.ok) return sendXMLError(res, 403, verdict.message === 'Request has expired' ? 'ExpiredToken' : 'SignatureDoesNotMatch', verdict.message);
    } else if (!this.auth.bearer(req.headers.authorization).ok) {
      return sendXMLError(res, 403, 'AccessDenied', 'Anonymous caller does not have storage.objects.get access.');
    }
    const [bucket, ...nameParts] = segments;
    if (!this.store.hasBucket(bucket)) return sendXMLError(res, 404, 'NoSuchBucket', 'The specified bucket does not exist.');
    const object = this.store.get(bucket, nameParts.join('/'));
    if (!object) return sendXMLError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
    return sendMedia(req, res, object, () => sendXMLError(res, 416, 'InvalidRange', 'The requested range cannot be satisfied.'));
  }
}
