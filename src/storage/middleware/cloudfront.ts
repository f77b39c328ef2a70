/**
 * The `cloudfront` storage middleware: blob GETs on the s3 driver are redirected to a CloudFront
 * URL signed with a canned policy, as Distribution's middleware (aws-sdk-go's URLSigner) makes
 * them: `<baseurl>/<s3 key>?Expires=<unix s>&Signature=<sig>&Key-Pair-Id=<id>`, where the
 * signature is RSA PKCS#1 v1.5 over SHA-1 of the policy JSON, base64 with + = / turned into - _ ~.
 * With `ipfilteredby: aws|awsregion`, clients whose IP is in AWS's published ranges (all of
 * them, or the `awsregion` ones) get the s3 driver's own presigned URL instead.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { checkPath, type RedirectClient, type StorageDriver } from '../driver.js';
import type { AwsIpRanges } from './ip-ranges.js';
import { checkHttpURL, type MiddlewareOptions } from './options.js';
import { WrappedDriver } from './wrap.js';

export const CLOUDFRONT_OPTIONS = [
  'baseurl',
  'privatekey',
  'keypairid',
  'duration',
  'ipfilteredby',
  'awsregion',
  'updatefrequency',
  'updatefrenquency', // Distribution 2.8's spelling
  'iprangesurl',
] as const;

export const DEFAULT_DURATION_MS = 20 * 60_000;
export const DEFAULT_UPDATE_FREQUENCY_MS = 12 * 3_600_000;
export const DEFAULT_IP_RANGES_URL = 'https://ip-ranges.amazonaws.com/ip-ranges.json';

export interface IpFilterSettings {
  /** null: any AWS region (`ipfilteredby: aws`); else the lower-cased `awsregion` list. */
  regions: string[] | null;
  url: string;
  updateMs: number;
}

export interface CloudFrontSettings {
  /** baseurl with a scheme (https:// when none is given) and a trailing '/'. */
  baseURL: string;
  keyPairId: string;
  privateKey: KeyObject;
  durationMs: number;
  /** null for `ipfilteredby: none` (the default). */
  ipFilter: IpFilterSettings | null;
}

export function parseCloudFrontOptions(o: MiddlewareOptions, warn: (message: string) => void): CloudFrontSettings {
  let baseURL = o.string('baseurl', 'the URL CloudFront serves the bucket at, such as "https://d111111abcdef8.cloudfront.net"', true);
  if (!baseURL.includes('://')) baseURL = `https://${baseURL}`;
  if (!baseURL.endsWith('/')) baseURL += '/';
  const problem = checkHttpURL(baseURL);
  if (problem) o.fail('baseurl', problem);
  if (/[?#]/.test(baseURL)) o.fail('baseurl', 'expected a URL without query or fragment: the object key is appended to it');
  // CloudFront policies are ASCII: a non-ASCII host must be given as punycode, a path %-escaped.
  if (/[^\x21-\x7e]/.test(baseURL)) o.fail('baseurl', 'expected printable ASCII only (punycode hosts, %-escaped paths)');

  const keyPairId = o.string('keypairid', 'the CloudFront key pair or public key ID', true);
  if (keyPairId === '' || /[^A-Za-z0-9_-]/.test(keyPairId)) o.fail('keypairid', `expected a CloudFront key ID such as "K2JCJMDEHXQW5F", got ${JSON.stringify(keyPairId)}`);
  const privateKey = readPrivateKey(o);

  const durationMs = o.duration('duration', DEFAULT_DURATION_MS, warn);
  if (o.has('updatefrenquency')) warn(`${o.keyOf('updatefrenquency')}: read as updatefrequency (the misspelt name of Distribution 2.8's documentation)`);
  const frequencyKey = o.has('updatefrequency') ? 'updatefrequency' : 'updatefrenquency';
  const updateMs = o.duration(frequencyKey, DEFAULT_UPDATE_FREQUENCY_MS, warn);
  const url = o.string('iprangesurl', 'the URL of AWS\'s ip-ranges.json') ?? DEFAULT_IP_RANGES_URL;
  const urlProblem = checkHttpURL(url);
  if (urlProblem) o.fail('iprangesurl', urlProblem);

  const filter = (o.string('ipfilteredby', 'one of none, aws, awsregion') ?? '').trim().toLowerCase();
  let ipFilter: IpFilterSettings | null;
  switch (filter) {
    case '':
    case 'none':
      ipFilter = null;
      break;
    case 'aws':
      ipFilter = { regions: null, url, updateMs };
      break;
    case 'awsregion':
      ipFilter = { regions: parseRegions(o), url, updateMs };
      break;
    default:
      o.fail('ipfilteredby', `expected one of none, aws, awsregion, got ${JSON.stringify(o.raw.ipfilteredby)}`);
  }
  return { baseURL, keyPairId, privateKey, durationMs, ipFilter };
}

function parseRegions(o: MiddlewareOptions): string[] {
  const expected = 'a comma-separated list of AWS regions such as "us-east-1, us-west-2" (needed by ipfilteredby: awsregion)';
  const raw = o.raw.awsregion;
  const items = Array.isArray(raw) && raw.every((r) => typeof r === 'string') ? raw : o.string('awsregion', expected, true).split(',');
  const regions = items.map((r) => r.trim().toLowerCase()).filter((r) => r !== '');
  if (regions.length === 0) o.fail('awsregion', `required, ${expected}`);
  return regions;
}

function readPrivateKey(o: MiddlewareOptions): KeyObject {
  const path = o.string('privatekey', 'the path of the PEM file with the CloudFront RSA private key', true);
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    o.fail('privatekey', `cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    o.fail('privatekey', `${JSON.stringify(path)} is not an unencrypted PEM private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'rsa') o.fail('privatekey', `${JSON.stringify(path)} holds a ${key.asymmetricKeyType} key; CloudFront signs with RSA`);
  return key;
}

/** Go's encoding/json string: JSON.stringify, plus < > & and U+2028/9 as \u escapes. */
function goJSONString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The canned policy CloudFront checks the signature against, byte for byte as aws-sdk-go writes it. */
export function cannedPolicy(resource: string, expires: number): string {
  return `{"Statement":[{"Resource":${goJSONString(resource)},"Condition":{"DateLessThan":{"AWS:EpochTime":${expires}}}}]}`;
}

/** CloudFront's URL-safe base64: + = / become - _ ~. */
export function cloudFrontBase64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/[+=/]/g, (c) => (c === '+' ? '-' : c === '=' ? '_' : '~'));
}

/** A URL signed with a canned policy valid until `expires` (Unix seconds). */
export function signCloudFrontURL(url: string, keyPairId: string, key: KeyObject, expires: number): string {
  const signature = cloudFrontBase64(sign('sha1', Buffer.from(cannedPolicy(url, expires)), key));
  return `${url}${url.includes('?') ? '&' : '?'}Expires=${expires}&Signature=${signature}&Key-Pair-Id=${keyPairId}`;
}

/** The s3 driver's object key of a path (Distribution's S3BucketKey). */
export interface S3Keyed extends StorageDriver {
  key(path: string): string;
}

export function isS3Driver(driver: StorageDriver): driver is S3Keyed {
  return driver.name === 's3' && !(driver instanceof WrappedDriver) && typeof (driver as Partial<S3Keyed>).key === 'function';
}

export class CloudFrontMiddleware extends WrappedDriver {
  constructor(
    override readonly inner: S3Keyed,
    readonly settings: CloudFrontSettings,
    private readonly ranges: AwsIpRanges | null,
    private readonly log?: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super(inner);
  }

  override async redirectURL(method: string, path: string, client?: RedirectClient): Promise<string | null> {
    checkPath(this.name, path);
    if (this.ranges?.initialized && client) {
      if (this.ranges.contains(client.ip)) {
        this.log?.debug({ ip: client.ip }, 'cloudfront: client in the allowed AWS ranges, redirecting to s3 directly');
        return this.inner.redirectURL(method, path, client);
      }
      this.log?.debug({ ip: client.ip }, 'cloudfront: client not in the allowed AWS ranges, redirecting to CloudFront');
    }
    const expires = Math.floor((this.now() + this.settings.durationMs) / 1000);
    return signCloudFrontURL(this.settings.baseURL + this.inner.key(path), this.settings.keyPairId, this.settings.privateKey, expires);
  }
}
