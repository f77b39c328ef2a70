/**
 * The `s3` driver's parameters, as Distribution's s3-aws driver reads them, and the AWS SDK
 * client they describe. Values out of Distribution's ranges fail start-up with the key's
 * name; keys the SDK cannot honour (v4auth: false) are reported through `warn`.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { boolParam, isUnset, stringParam } from './driver-options.js';
import { MAX_PART_SIZE, MIN_PART_SIZE, MiB } from './s3-parts.js';

export interface S3Settings {
  accessKey?: string;
  secretKey?: string;
  sessionToken?: string;
  region: string;
  regionEndpoint?: string;
  forcePathStyle: boolean;
  bucket: string;
  encrypt: boolean;
  keyId?: string;
  secure: boolean;
  skipVerify: boolean;
  v4auth: boolean;
  chunkSize: number;
  multipartCopyChunkSize: number;
  multipartCopyMaxConcurrency: number;
  multipartCopyThresholdSize: number;
  rootDirectory: string;
  /** undefined for Distribution's "NONE": no x-amz-storage-class header. */
  storageClass?: string;
  objectAcl: string;
  userAgent?: string;
  useDualStack: boolean;
  accelerate: boolean;
  useFipsEndpoint: boolean;
  redirectEndpoint?: string;
  logLevel: string;
}

export const DEFAULT_CHUNK_SIZE = 10 * MiB;
export const DEFAULT_COPY_CHUNK_SIZE = 32 * MiB;
export const DEFAULT_COPY_CONCURRENCY = 100;
export const DEFAULT_COPY_THRESHOLD = 32 * MiB;

const OBJECT_ACLS = [
  'private',
  'public-read',
  'public-read-write',
  'authenticated-read',
  'aws-exec-read',
  'bucket-owner-read',
  'bucket-owner-full-control',
];
/** Distribution 2.8 accepts NONE, STANDARD and REDUCED_REDUNDANCY; later versions add these. */
const STORAGE_CLASSES = ['NONE', 'STANDARD', 'REDUCED_REDUNDANCY', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR'];
const LOG_LEVELS = ['off', 'debug', 'debugwithsigning', 'debugwithhttpbody', 'debugwithrequestretries', 'debugwithrequesterrors', 'debugwitheventstreambody'];

function fail(message: string): never {
  throw new Error(`storage.s3: ${message}`);
}

function str(o: Record<string, unknown>, key: string): string | undefined {
  return stringParam(o, key, () => fail(`${key} must be a string`));
}

function bool(o: Record<string, unknown>, key: string, fallback: boolean): boolean {
  return boolParam(o, key, fallback, () => fail(`the ${key} parameter should be a boolean`));
}

function int(o: Record<string, unknown>, key: string, fallback: number, min: number, max: number): number {
  const v = o[key];
  let n = fallback;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && v.trim() !== '') n = Number(v.trim());
  else if (!isUnset(v)) fail(`${key} parameter must be an integer, ${String(v)} invalid`);
  if (!Number.isSafeInteger(n)) fail(`${key} parameter must be an integer, ${String(v)} invalid`);
  if (n < min || n > max) fail(`the ${key} ${n} parameter should be a number between ${min} and ${max} (inclusive)`);
  return n;
}

/**
 * Below this size a blob is committed with one CopyObject, above it with a multipart copy. On AWS
 * Distribution's 32 MiB holds: parallel part copies move big objects faster. An S3-compatible
 * store (`regionendpoint`) defaults to the largest single copy, 5 GiB: Ceph RGW copies a whole
 * object by reference (a 40 MB layer in ~50 ms), but copies part ranges byte by byte (~350 ms).
 */
export function defaultCopyThreshold(regionEndpoint: string | undefined): number {
  return regionEndpoint === undefined || /(^|\.)amazonaws\.com(\.cn)?(:\d+)?(\/|$)/i.test(regionEndpoint.replace(/^[a-z]+:\/\//i, '')) ? DEFAULT_COPY_THRESHOLD : MAX_PART_SIZE;
}

/** Read and check the `storage.s3` parameters, with Distribution's defaults. */
export function parseS3Options(o: Record<string, unknown>, warn: (message: string) => void = () => undefined): S3Settings {
  const region = str(o, 'region') ?? fail('no region parameter provided');
  const bucket = str(o, 'bucket') ?? fail('no bucket parameter provided');
  const accessKey = str(o, 'accesskey');
  const secretKey = str(o, 'secretkey');
  if ((accessKey === undefined) !== (secretKey === undefined)) {
    fail('accesskey and secretkey go together: give both, or neither to use the default AWS credential chain');
  }
  const regionEndpoint = str(o, 'regionendpoint');
  const storageClassParam = (str(o, 'storageclass') ?? 'STANDARD').toUpperCase();
  if (!STORAGE_CLASSES.includes(storageClassParam)) {
    fail(`the storageclass parameter must be one of ${STORAGE_CLASSES.join(', ')}; ${storageClassParam} is invalid`);
  }
  const objectAcl = str(o, 'objectacl') ?? 'private';
  if (!OBJECT_ACLS.includes(objectAcl)) fail(`invalid value for objectacl parameter: ${objectAcl} (expected one of ${OBJECT_ACLS.join(', ')})`);
  // YAML 1.1 reads a bare `off` as false.
  const rawLog = o.loglevel === false ? 'off' : (str(o, 'loglevel') ?? 'off').toLowerCase();
  if (!LOG_LEVELS.includes(rawLog)) warn(`storage.s3.loglevel "${rawLog}" is not one of ${LOG_LEVELS.join(', ')}: logging is off, as in Distribution`);
  const settings: S3Settings = {
    accessKey,
    secretKey,
    sessionToken: str(o, 'sessiontoken'),
    region,
    regionEndpoint,
    // Distribution 2.8 always uses path-style requests with a regionendpoint.
    forcePathStyle: bool(o, 'forcepathstyle', regionEndpoint !== undefined),
    bucket,
    encrypt: bool(o, 'encrypt', false),
    keyId: str(o, 'keyid'),
    secure: bool(o, 'secure', true),
    skipVerify: bool(o, 'skipverify', false),
    v4auth: bool(o, 'v4auth', true),
    chunkSize: int(o, 'chunksize', DEFAULT_CHUNK_SIZE, MIN_PART_SIZE, MAX_PART_SIZE),
    multipartCopyChunkSize: int(o, 'multipartcopychunksize', DEFAULT_COPY_CHUNK_SIZE, MIN_PART_SIZE, MAX_PART_SIZE),
    multipartCopyMaxConcurrency: int(o, 'multipartcopymaxconcurrency', DEFAULT_COPY_CONCURRENCY, 1, Number.MAX_SAFE_INTEGER),
    multipartCopyThresholdSize: int(o, 'multipartcopythresholdsize', defaultCopyThreshold(regionEndpoint), 0, MAX_PART_SIZE),
    rootDirectory: str(o, 'rootdirectory') ?? '',
    storageClass: storageClassParam === 'NONE' ? undefined : storageClassParam,
    objectAcl,
    userAgent: str(o, 'useragent'),
    useDualStack: bool(o, 'usedualstack', false),
    accelerate: bool(o, 'accelerate', false),
    useFipsEndpoint: bool(o, 'usefipsendpoint', false),
    redirectEndpoint: str(o, 'redirectendpoint'),
    logLevel: LOG_LEVELS.includes(rawLog) ? rawLog : 'off',
  };
  if (!settings.v4auth) {
    if (regionEndpoint === undefined || regionEndpoint.includes('s3.amazonaws.com')) {
      fail('on Amazon S3 this storage driver can only be used with v4 authentication (v4auth: true)');
    }
    warn('storage.s3.v4auth is false, but Wharf signs only with AWS Signature Version 4 (S3-compatible stores such as Ceph RGW and MinIO accept it)');
  }
  if (settings.keyId !== undefined && !settings.encrypt) {
    warn('storage.s3.keyid is set but encrypt is false: objects are stored without server-side encryption, as Distribution does');
  }
  if (regionEndpoint !== undefined && (settings.useDualStack || settings.accelerate || settings.useFipsEndpoint)) {
    const which = ['usedualstack', 'accelerate', 'usefipsendpoint'].filter((k) => bool(o, k, false));
    fail(`${which.join(', ')} choose an AWS endpoint and cannot be combined with regionendpoint`);
  }
  if (settings.redirectEndpoint !== undefined && !/^https?:\/\/[^/]+/.test(settings.redirectEndpoint)) {
    fail(`redirectendpoint must be an http or https URL, got ${settings.redirectEndpoint}`);
  }
  return settings;
}

export interface ClientLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** The endpoint URL for `regionendpoint`: its own scheme if it has one, else from `secure`. */
function endpointURL(endpoint: string, secure: boolean): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `${secure ? 'https' : 'http'}://${endpoint}`;
}

/** The SDK client for these settings; `endpoint` overrides regionendpoint (for presigned redirect URLs). */
export function makeS3Client(s: S3Settings, log?: ClientLog, endpoint = s.regionEndpoint): S3Client {
  const config: S3ClientConfig = {
    region: s.region,
    forcePathStyle: s.forcePathStyle,
    tls: s.secure,
    useDualstackEndpoint: s.useDualStack,
    useAccelerateEndpoint: s.accelerate,
    useFipsEndpoint: s.useFipsEndpoint,
    // The SDK's default streams bodies as aws-chunked with trailing checksums, which
    // S3-compatible stores such as Ceph 16 refuse (411 MissingContentLength).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 64, rejectUnauthorized: !s.skipVerify }),
      connectionTimeout: 10_000,
    },
  };
  if (endpoint !== undefined) config.endpoint = endpointURL(endpoint, s.secure);
  if (s.accessKey !== undefined && s.secretKey !== undefined) {
    config.credentials = { accessKeyId: s.accessKey, secretAccessKey: s.secretKey, sessionToken: s.sessionToken };
  }
  if (s.logLevel !== 'off' && log) {
    config.logger = {
      trace: () => undefined,
      debug: (...args: unknown[]) => log.debug({ s3: args }, 's3 client'),
      info: (...args: unknown[]) => log.debug({ s3: args }, 's3 client'),
      warn: (...args: unknown[]) => log.warn({ s3: args }, 's3 client'),
      error: (...args: unknown[]) => log.error({ s3: args }, 's3 client'),
    };
  }
  const client = new S3Client(config);
  if (s.userAgent !== undefined) {
    // Distribution replaces the User-Agent header with `useragent`.
    const ua = s.userAgent;
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers?: Record<string, string> };
        if (request.headers) {
          request.headers['user-agent'] = ua;
          delete request.headers['x-amz-user-agent'];
        }
        return next(args);
      },
      { step: 'build', priority: 'low', name: 'wharfUserAgent' },
    );
  }
  return client;
}

