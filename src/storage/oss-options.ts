/**
 * The `oss` driver's parameters, as Distribution's oss driver reads them, where the requests go
 * (region, internal, endpoint, secure), the ali-oss client they describe, and the V1 signed
 * URLs that blob GETs are redirected to. Values out of range fail start-up naming the key.
 */
import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import OSS from 'ali-oss';
import { boolParam, integerParam, stringParam } from './driver-options.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
/** Distribution's smallest `chunksize` (its writer's part size). */
export const MIN_CHUNK_SIZE = 5 * MiB;
export const DEFAULT_CHUNK_SIZE = 10 * MiB;
/** OSS refuses parts above 5 GiB. */
export const MAX_PART_SIZE = 5 * GiB;
/** OSS refuses a part below 100 KiB unless it is the last one of the upload. */
export const MIN_PART_SIZE = 100 * 1024;
export const MAX_PARTS = 10_000;
/** Distribution's oss driver copies objects from this size on in parts of this size, 10 at once. */
export const COPY_THRESHOLD = 128 * MiB;
export const COPY_PART_SIZE = 128 * MiB;
export const COPY_CONCURRENCY = 10;

export interface OssSettings {
  accessKeyId: string;
  accessKeySecret: string;
  region: string;
  endpoint?: string;
  internal: boolean;
  bucket: string;
  encrypt: boolean;
  encryptionKeyId?: string;
  secure: boolean;
  skipVerify: boolean;
  chunkSize: number;
  rootDirectory: string;
  /** Not configuration keys (Distribution has none): moves of objects this large copy in parts. */
  copyThreshold: number;
  copyPartSize: number;
}

/** Where requests go: the scheme, the host, and whether the bucket is already in that host. */
export interface OssTarget {
  protocol: 'http:' | 'https:';
  /** The service or bucket host, with its port. */
  host: string;
  /** The host names the bucket (a bucket domain, a CNAME, or an IP address that serves one). */
  bucketInHost: boolean;
}

function fail(key: string, message: string): never {
  throw new Error(`storage.oss.${key}: ${message}`);
}

function str(o: Record<string, unknown>, key: string): string | undefined {
  return stringParam(o, key, (v) => fail(key, `expected a string, got ${JSON.stringify(v)}`));
}

function required(o: Record<string, unknown>, key: string, what: string): string {
  return str(o, key) ?? fail(key, `required (${what})`);
}

function bool(o: Record<string, unknown>, key: string, fallback: boolean): boolean {
  return boolParam(o, key, fallback, (v) => fail(key, `expected true or false, got ${JSON.stringify(v)}`));
}

function chunkSize(o: Record<string, unknown>): number {
  const n = integerParam(o, 'chunksize', (v) => fail('chunksize', `expected an integer number of bytes, got ${JSON.stringify(v)}`), false);
  if (n === undefined) return DEFAULT_CHUNK_SIZE;
  if (n < MIN_CHUNK_SIZE) fail('chunksize', `${n} is below the smallest part size, ${MIN_CHUNK_SIZE} bytes (5 MiB)`);
  if (n > MAX_PART_SIZE) fail('chunksize', `${n} is above OSS's largest part size, ${MAX_PART_SIZE} bytes (5 GiB)`);
  return n;
}

/** OSS's bucket naming rule: 3 to 63 lowercase letters, digits and hyphens, no hyphen at either end. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** Read and check the `storage.oss` parameters, with Distribution's defaults. */
export function parseOssOptions(o: Record<string, unknown>, warn: (message: string) => void = () => undefined): OssSettings {
  const accessKeyId = required(o, 'accesskeyid', 'the AccessKey ID').trim();
  const accessKeySecret = required(o, 'accesskeysecret', 'the AccessKey secret').trim();
  const region = required(o, 'region', 'the OSS region, e.g. oss-cn-hangzhou');
  const bucket = required(o, 'bucket', 'the name of an existing bucket');
  if (!BUCKET_NAME.test(bucket)) fail('bucket', `"${bucket}" is not an OSS bucket name (3 to 63 lowercase letters, digits and '-', not starting or ending with '-')`);
  if (!/^[a-z0-9-]+$/.test(region)) fail('region', `"${region}" is not an OSS region name such as oss-cn-hangzhou`);
  const endpoint = str(o, 'endpoint');
  if (endpoint !== undefined && !/^(https?:\/\/)?[A-Za-z0-9.-]+(:\d+)?\/?$/.test(endpoint)) {
    fail('endpoint', `expected a host name with an optional port (and optional http:// or https://), got "${endpoint}"`);
  }
  const settings: OssSettings = {
    accessKeyId,
    accessKeySecret,
    region,
    endpoint: endpoint?.replace(/\/$/, ''),
    internal: bool(o, 'internal', false),
    bucket,
    encrypt: bool(o, 'encrypt', false),
    encryptionKeyId: str(o, 'encryptionkeyid'),
    secure: bool(o, 'secure', true),
    skipVerify: bool(o, 'skipverify', false),
    chunkSize: chunkSize(o),
    rootDirectory: str(o, 'rootdirectory') ?? '',
    copyThreshold: COPY_THRESHOLD,
    copyPartSize: COPY_PART_SIZE,
  };
  if (settings.endpoint !== undefined && settings.internal) {
    warn('storage.oss.internal is ignored: endpoint names the host to use, as in Distribution');
  }
  if (settings.encryptionKeyId !== undefined && !settings.encrypt) {
    warn('storage.oss.encryptionkeyid is set without encrypt: objects are encrypted with that KMS key anyway, as Distribution does');
  }
  return settings;
}

/**
 * Where the driver's requests go. Without `endpoint`: `<bucket>.<region>[-internal].aliyuncs.com`.
 * Distribution's `endpoint` is the bucket's own host (`<bucket>.oss-cn-hangzhou.aliyuncs.com`, a
 * CNAME bound to the bucket, or an address that serves it), used as given; a regional service
 * host (`oss-cn-hangzhou.aliyuncs.com`) gets the bucket in front, as OSS expects.
 */
export function ossTarget(s: OssSettings): OssTarget {
  if (s.endpoint === undefined) {
    return { protocol: s.secure ? 'https:' : 'http:', host: `${s.region}${s.internal ? '-internal' : ''}.aliyuncs.com`, bucketInHost: false };
  }
  const scheme = /^(https?):\/\//i.exec(s.endpoint);
  const host = s.endpoint.replace(/^https?:\/\//i, '').toLowerCase();
  const protocol = scheme ? (`${scheme[1]!.toLowerCase()}:` as OssTarget['protocol']) : s.secure ? 'https:' : 'http:';
  const hostname = host.replace(/:\d+$/, '');
  const serviceHost = hostname.endsWith('.aliyuncs.com') && !hostname.startsWith(`${s.bucket}.`);
  return { protocol, host, bucketInHost: isIP(hostname) !== 0 || !serviceHost };
}

/** The base URL of the bucket's objects: `<protocol>//<bucket host>/`. */
export function bucketBaseURL(s: OssSettings): string {
  const t = ossTarget(s);
  return `${t.protocol}//${t.bucketInHost ? t.host : `${s.bucket}.${t.host}`}/`;
}

/** The ali-oss client for these settings. */
export function makeOssClient(s: OssSettings): OSS {
  const t = ossTarget(s);
  const options = {
    accessKeyId: s.accessKeyId,
    accessKeySecret: s.accessKeySecret,
    bucket: s.bucket,
    region: s.region,
    internal: s.internal,
    secure: t.protocol === 'https:',
    endpoint: `${t.protocol}//${t.host}`,
    // With cname, ali-oss sends requests to the endpoint as it is, without the bucket in front.
    cname: t.bucketInHost && isIP(t.host.replace(/:\d+$/, '')) === 0,
    timeout: 120_000,
    agent: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 64, rejectUnauthorized: !s.skipVerify }),
  };
  return new OSS(options as OSS.Options);
}

/** The server-side encryption headers of new objects: Distribution's AES256, or KMS with a key. */
export function encryptionHeaders(s: OssSettings): Record<string, string> {
  if (s.encryptionKeyId !== undefined) return { 'x-oss-server-side-encryption': 'KMS', 'x-oss-server-side-encryption-key-id': s.encryptionKeyId };
  return s.encrypt ? { 'x-oss-server-side-encryption': 'AES256' } : {};
}

/**
 * A V1 signed URL for `method` on `key`, valid until `expires` (seconds since the epoch): the
 * query carries OSSAccessKeyId, Expires and the HMAC-SHA1 Signature of
 * "VERB\n\n\nExpires\n/bucket/key". ali-oss's signatureUrl refuses IP-address endpoints, which
 * Distribution's driver signs for all the same.
 */
export function signedURL(s: OssSettings, method: 'GET' | 'HEAD', key: string, expires: number): string {
  const stringToSign = `${method}\n\n\n${expires}\n/${s.bucket}/${key}`;
  const signature = createHmac('sha1', s.accessKeySecret).update(stringToSign, 'utf8').digest('base64');
  const query = new URLSearchParams({ OSSAccessKeyId: s.accessKeyId, Expires: String(expires), Signature: signature });
  const path = key.split('/').map(encodeURIComponent).join('/');
  return `${bucketBaseURL(s)}${path}?${query.toString()}`;
}
