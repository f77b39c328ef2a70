/**
 * A fake Aliyun OSS server (node:http) written from OSS's published API reference, for the oss
 * driver's tests: no OSS emulator exists on npm or in Debian. It implements what the driver and
 * ali-oss use (PutObject, GetObject with Range, HeadObject, DeleteObject, DeleteMultipleObjects,
 * GetBucket (ListObjects V1), CopyObject, the multipart operations, ListMultipartUploads,
 * ListParts), with OSS's XML bodies and error codes, server-side encryption headers, and checks
 * every request's V1 signature (auth.ts). Bodies go to disk (store.ts).
 *
 * The bucket of a request is the first label of its Host (`<bucket>.oss-cn-hangzhou.aliyuncs.com`,
 * which ali-oss sends even to an IP endpoint) or, for any other host, the bucket bound to that
 * host as a custom domain (OSS's CNAME binding): signed URLs to 127.0.0.1:<port> need one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { checkSignature } from './auth.js';
import { encryptionHeaders, OssError, Store, type Encryption, type ObjectAttributes } from './store.js';
import { document, elements, hasRoot, text, type XmlNode } from './xml.js';
import { readObject } from './get-object.js';

export const MIN_PART_SIZE = 100 * 1024;
const MAX_PART_SIZE = 5 * 1024 ** 3;
/** OSS copies objects up to 1 GB with CopyObject; larger ones need UploadPartCopy. */
const MAX_COPY_SIZE = 1024 ** 3;
const MAX_BODY_XML = 2 * 1024 * 1024;

export interface LoggedRequest {
  method: string;
  operation: string;
  key: string;
  status: number;
}

export interface FakeOssState {
  store: Store;
  secrets: Map<string, string>;
  /** Hosts bound to a bucket (custom domains). */
  hosts: Map<string, string>;
  /** The server's clock (tests move it to expire signed URLs). */
  now: () => number;
  log: LoggedRequest[];
}

export interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  state: FakeOssState;
  bucket: string;
  key: string;
  query: URLSearchParams;
  requestId: string;
  operation: string;
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function attributes(req: IncomingMessage): ObjectAttributes {
  const meta: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-oss-meta-') && typeof value === 'string') meta[name.slice('x-oss-meta-'.length)] = value;
  }
  return { contentType: headerOf(req, 'content-type') ?? 'application/octet-stream', encryption: encryptionOf(req), meta };
}

function encryptionOf(req: IncomingMessage): Encryption | undefined {
  const algorithm = headerOf(req, 'x-oss-server-side-encryption');
  const keyId = headerOf(req, 'x-oss-server-side-encryption-key-id');
  if (algorithm === undefined) {
    if (keyId !== undefined) throw new OssError(400, 'InvalidArgument', 'x-oss-server-side-encryption-key-id needs x-oss-server-side-encryption: KMS.');
    return undefined;
  }
  if (!['AES256', 'KMS', 'SM4'].includes(algorithm)) {
    throw new OssError(400, 'InvalidEncryptionAlgorithmError', 'The Encryption request you specified is not valid. Supported value: AES256/KMS/SM4.');
  }
  if (keyId !== undefined && algorithm !== 'KMS') throw new OssError(400, 'InvalidArgument', 'x-oss-server-side-encryption-key-id is only valid with KMS.');
  return { algorithm, keyId };
}

function sendXml(c: Context, root: string, body: XmlNode, headers: Record<string, string> = {}): void {
  const payload = document(root, body);
  c.res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(payload), 'x-oss-request-id': c.requestId, ...headers });
  c.res.end(payload);
}

function sendEmpty(c: Context, status: number, headers: Record<string, string> = {}): void {
  c.res.writeHead(status, { 'Content-Length': 0, 'x-oss-request-id': c.requestId, ...headers });
  c.res.end();
}

function sendError(c: Context, err: OssError): void {
  const payload = document('Error', { Code: err.code, Message: err.message, RequestId: c.requestId, HostId: headerOf(c.req, 'host') ?? '', ...err.extra });
  const headers: Record<string, string | number> = { 'Content-Type': 'application/xml', 'x-oss-request-id': c.requestId, 'x-oss-ec': '0000-00000000' };
  if (err.code === 'InvalidRange') headers['Content-Range'] = `bytes */${err.extra.ActualObjectSize}`;
  if (c.req.method === 'HEAD') {
    // A HEAD answer has no body: OSS sends the error document base64-encoded in x-oss-err.
    headers['x-oss-err'] = Buffer.from(payload).toString('base64');
    c.res.writeHead(err.status, headers);
    c.res.end();
    return;
  }
  c.res.writeHead(err.status, { ...headers, 'Content-Length': Buffer.byteLength(payload) });
  c.res.end(payload);
}

async function readXml(c: Context): Promise<string> {
  const received = await c.state.store.receive(c.req, MAX_BODY_XML, headerOf(c.req, 'content-md5'));
  try {
    const chunks: Buffer[] = [];
    const { createReadStream } = await import('node:fs');
    for await (const chunk of createReadStream(received.file)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    await c.state.store.discard(received);
  }
}

function partNumber(c: Context): number {
  const n = Number(c.query.get('partNumber'));
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new OssError(400, 'InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive.', { ArgumentName: 'partNumber' });
  return n;
}

function maxOf(c: Context, name: string, fallback: number): number {
  const raw = c.query.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new OssError(400, 'InvalidArgument', `${name} must be an integer from 1 to 1000.`, { ArgumentName: name });
  return n;
}

/** The source of a copy: x-oss-copy-source is "/<bucket>/<url-encoded key>". */
function copySource(c: Context) {
  const raw = headerOf(c.req, 'x-oss-copy-source') ?? '';
  const m = /^\/?([^/]+)\/(.+)$/.exec(raw);
  if (!m) throw new OssError(400, 'InvalidArgument', 'Copy Source must mention the source bucket and key: /sourcebucket/sourcekey.', { ArgumentName: 'x-oss-copy-source' });
  return c.state.store.need(m[1]!, decodeURIComponent(m[2]!));
}

const iso = (d: Date) => d.toISOString();

async function putObject(c: Context): Promise<void> {
  const attrs = attributes(c.req);
  const received = await c.state.store.receive(c.req, MAX_PART_SIZE, headerOf(c.req, 'content-md5'));
  const o = c.state.store.put(c.bucket, c.key, received, attrs);
  sendEmpty(c, 200, { ETag: o.etag, ...encryptionHeaders(o.encryption) });
}

async function copyObject(c: Context): Promise<void> {
  const source = copySource(c);
  if (source.size > MAX_COPY_SIZE) throw new OssError(400, 'InvalidRequest', 'The source object of CopyObject must be smaller than 1 GB: use UploadPartCopy.');
  const directive = headerOf(c.req, 'x-oss-metadata-directive') ?? 'COPY';
  const attrs = directive === 'REPLACE' ? attributes(c.req) : { contentType: source.contentType, meta: source.meta, encryption: encryptionOf(c.req) };
  const o = await c.state.store.copy(c.bucket, c.key, source, attrs);
  sendXml(c, 'CopyObjectResult', { ETag: o.etag, LastModified: iso(o.lastModified) }, encryptionHeaders(o.encryption));
}

async function uploadPart(c: Context): Promise<void> {
  const upload = c.state.store.upload(c.bucket, c.key, c.query.get('uploadId'));
  const number = partNumber(c);
  const received = await c.state.store.receive(c.req, MAX_PART_SIZE, headerOf(c.req, 'content-md5'));
  if (!c.state.store.uploads.has(upload.id)) {
    await c.state.store.discard(received);
    throw new OssError(404, 'NoSuchUpload', 'The specified upload does not exist.');
  }
  const part = c.state.store.putPart(upload, number, received);
  sendEmpty(c, 200, { ETag: part.etag });
}

async function uploadPartCopy(c: Context): Promise<void> {
  const upload = c.state.store.upload(c.bucket, c.key, c.query.get('uploadId'));
  const number = partNumber(c);
  const source = copySource(c);
  let first = 0;
  let last = source.size - 1;
  const range = headerOf(c.req, 'x-oss-copy-source-range');
  if (range !== undefined) {
    const m = /^bytes=(\d+)-(\d+)$/.exec(range);
    if (!m || Number(m[1]) > Number(m[2]) || Number(m[2]) >= source.size) {
      throw new OssError(400, 'InvalidArgument', 'The x-oss-copy-source-range is not valid.', { ArgumentName: 'x-oss-copy-source-range' });
    }
    [first, last] = [Number(m[1]), Number(m[2])];
  }
  if (last - first + 1 > MAX_PART_SIZE) throw new OssError(400, 'EntityTooLarge', 'A part may not exceed 5 GB.');
  const part = await c.state.store.copyPart(upload, number, source, first, last);
  sendXml(c, 'CopyPartResult', { LastModified: iso(part.lastModified), ETag: part.etag }, { ETag: part.etag });
}

function initiate(c: Context): void {
  const u = c.state.store.initUpload(c.bucket, c.key, attributes(c.req));
  c.req.resume();
  sendXml(c, 'InitiateMultipartUploadResult', { Bucket: c.bucket, Key: c.key, UploadId: u.id }, encryptionHeaders(u.encryption));
}

async function complete(c: Context): Promise<void> {
  const upload = c.state.store.upload(c.bucket, c.key, c.query.get('uploadId'));
  const xml = await readXml(c);
  if (!hasRoot(xml, 'CompleteMultipartUpload')) throw new OssError(400, 'MalformedXML', 'The XML you provided was not well-formed.');
  const listed = elements(xml, 'Part', ['PartNumber', 'ETag']).map((p) => ({ number: Number(p.PartNumber), etag: p.ETag ?? '' }));
  const o = await c.state.store.complete(upload, listed, MIN_PART_SIZE);
  sendXml(c, 'CompleteMultipartUploadResult', { Location: `http://${headerOf(c.req, 'host')}/${c.key}`, Bucket: c.bucket, Key: c.key, ETag: o.etag }, encryptionHeaders(o.encryption));
}

async function abort(c: Context): Promise<void> {
  await c.state.store.drop(c.state.store.upload(c.bucket, c.key, c.query.get('uploadId')));
  sendEmpty(c, 204);
}

function listParts(c: Context): void {
  const upload = c.state.store.upload(c.bucket, c.key, c.query.get('uploadId'));
  const max = maxOf(c, 'max-parts', 1000);
  const marker = Number(c.query.get('part-number-marker') ?? 0);
  const all = [...upload.parts.values()].filter((p) => p.number > marker).sort((a, b) => a.number - b.number);
  const parts = all.slice(0, max);
  sendXml(c, 'ListPartsResult', {
    Bucket: c.bucket,
    Key: c.key,
    UploadId: upload.id,
    PartNumberMarker: marker,
    NextPartNumberMarker: parts.length ? parts[parts.length - 1]!.number : marker,
    MaxParts: max,
    IsTruncated: all.length > parts.length,
    Part: parts.map((p) => ({ PartNumber: p.number, LastModified: iso(p.lastModified), ETag: p.etag, Size: p.size })),
  });
}

function listUploads(c: Context): void {
  if (c.query.get('delimiter')) throw new OssError(400, 'NotImplemented', 'This fake OSS server lists multipart uploads without a delimiter only.');
  const prefix = c.query.get('prefix') ?? '';
  const keyMarker = c.query.get('key-marker') ?? '';
  const idMarker = c.query.get('upload-id-marker') ?? '';
  const max = maxOf(c, 'max-uploads', 1000);
  const all = c.state.store.uploadsOf(c.bucket).filter((u) => u.key.startsWith(prefix));
  let start = all.findIndex((u) => u.key > keyMarker);
  if (idMarker) {
    const at = all.findIndex((u) => u.key === keyMarker && u.id === idMarker);
    if (at >= 0) start = at + 1;
  }
  const rest = start < 0 ? [] : all.slice(start);
  const page = rest.slice(0, max);
  const last = page[page.length - 1];
  sendXml(c, 'ListMultipartUploadsResult', {
    Bucket: c.bucket,
    KeyMarker: keyMarker,
    UploadIdMarker: idMarker,
    NextKeyMarker: last?.key ?? '',
    NextUploadIdMarker: last?.id ?? '',
    Delimiter: '',
    Prefix: prefix,
    MaxUploads: max,
    IsTruncated: rest.length > page.length,
    Upload: page.map((u) => ({ Key: u.key, UploadId: u.id, Initiated: iso(u.initiated) })),
  });
}

function listObjects(c: Context): void {
  if (c.query.get('list-type') === '2') throw new OssError(400, 'NotImplemented', 'This fake OSS server implements ListObjects (V1) only.');
  const prefix = c.query.get('prefix') ?? '';
  const delimiter = c.query.get('delimiter') ?? '';
  const marker = c.query.get('marker') ?? '';
  const max = maxOf(c, 'max-keys', 100);
  const r = c.state.store.list(c.bucket, prefix, delimiter, marker, max);
  sendXml(c, 'ListBucketResult', {
    Name: c.bucket,
    Prefix: prefix,
    Marker: marker,
    MaxKeys: max,
    Delimiter: delimiter,
    IsTruncated: r.truncated,
    NextMarker: r.truncated ? r.nextMarker : undefined,
    Contents: r.contents.map(({ key, object }) => ({
      Key: key,
      LastModified: iso(object.lastModified),
      ETag: object.etag,
      Type: object.type,
      Size: object.size,
      StorageClass: 'Standard',
      Owner: { ID: '1234567890', DisplayName: '1234567890' },
    })),
    CommonPrefixes: r.prefixes.map((p) => ({ Prefix: p })),
  });
}

async function deleteMultiple(c: Context): Promise<void> {
  if (headerOf(c.req, 'content-md5') === undefined) throw new OssError(400, 'InvalidDigest', 'DeleteMultipleObjects needs a Content-MD5 header.');
  const xml = await readXml(c);
  if (!hasRoot(xml, 'Delete')) throw new OssError(400, 'MalformedXML', 'The XML you provided was not well-formed.');
  const keys = elements(xml, 'Object', ['Key']).map((o) => o.Key ?? '');
  if (keys.length === 0 || keys.length > 1000) throw new OssError(400, 'MalformedXML', 'Delete names 1 to 1000 objects.');
  for (const key of keys) c.state.store.delete(c.bucket, key);
  const quiet = text(xml, 'Quiet') === 'true';
  sendXml(c, 'DeleteResult', { Deleted: quiet ? undefined : keys.map((Key) => ({ Key })) });
}

function route(c: Context): { operation: string; run: (c: Context) => Promise<void> | void } {
  const q = c.query;
  const method = c.req.method ?? 'GET';
  const copy = headerOf(c.req, 'x-oss-copy-source') !== undefined;
  if (c.key === '') {
    if (method === 'GET' && q.has('uploads')) return { operation: 'ListMultipartUploads', run: listUploads };
    if (method === 'GET' && !q.has('acl') && !q.has('location')) return { operation: 'ListObjects', run: listObjects };
    if (method === 'POST' && q.has('delete')) return { operation: 'DeleteMultipleObjects', run: deleteMultiple };
  } else if (method === 'GET' && q.has('uploadId')) return { operation: 'ListParts', run: listParts };
  else if (method === 'GET' || method === 'HEAD') return { operation: method === 'GET' ? 'GetObject' : 'HeadObject', run: readObject };
  else if (method === 'PUT' && q.has('uploadId')) return copy ? { operation: 'UploadPartCopy', run: uploadPartCopy } : { operation: 'UploadPart', run: uploadPart };
  else if (method === 'PUT') return copy ? { operation: 'CopyObject', run: copyObject } : { operation: 'PutObject', run: putObject };
  else if (method === 'POST' && q.has('uploads')) return { operation: 'InitiateMultipartUpload', run: initiate };
  else if (method === 'POST' && q.has('uploadId')) return { operation: 'CompleteMultipartUpload', run: complete };
  else if (method === 'DELETE' && q.has('uploadId')) return { operation: 'AbortMultipartUpload', run: abort };
  else if (method === 'DELETE') {
    return {
      operation: 'DeleteObject',
      run: (ctx) => {
        ctx.state.store.delete(ctx.bucket, ctx.key); // 204 whether or not it was there, as OSS answers
        sendEmpty(ctx, 204);
      },
    };
  }
  return {
    operation: 'Unsupported',
    run: () => {
      throw new OssError(400, 'NotImplemented', `This fake OSS server does not implement ${method} ${c.key ? 'on objects' : 'on buckets'} with ${[...q.keys()].join(', ') || 'no sub-resource'}.`);
    },
  };
}

/** The bucket a request addresses: its Host's first label when that is a bucket, else a bound host. */
function bucketOf(state: FakeOssState, host: string): string | undefined {
  const label = host.split('.')[0]!;
  if (host.includes('.') && state.store.hasBucket(label) && !/^\d+$/.test(label)) return label;
  return state.hosts.get(host);
}

export async function handle(state: FakeOssState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://fake-oss');
  const requestId = randomBytes(12).toString('hex').toUpperCase();
  const key = decodeURIComponent(url.pathname.slice(1));
  const c: Context = { req, res, state, bucket: '', key, query: url.searchParams, requestId, operation: 'Unknown' };
  let status = 200;
  try {
    const bucket = bucketOf(state, (headerOf(req, 'host') ?? '').toLowerCase());
    if (bucket === undefined) throw new OssError(404, 'NoSuchBucket', 'The specified bucket does not exist.');
    c.bucket = bucket;
    const { operation, run } = route(c);
    c.operation = operation;
    const denied = checkSignature({ method: req.method ?? 'GET', headers: req.headers, query: url.searchParams, bucket, key }, state.secrets, state.now());
    if (denied) throw new OssError(denied.status, denied.code, denied.message, denied.extra);
    await run(c);
    status = res.statusCode;
  } catch (err) {
    const e = err instanceof OssError ? err : new OssError(500, 'InternalError', `We encountered an internal error: ${(err as Error).message}`);
    status = e.status;
    if (!res.headersSent) {
      if (!req.readableEnded) req.resume(); // drain a body we will not read
      sendError(c, e);
    } else res.destroy();
  } finally {
    state.log.push({ method: req.method ?? 'GET', operation: c.operation, key, status });
  }
}
