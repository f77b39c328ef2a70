/**
 * The `gcs` driver's parameters, as Distribution's gcs driver reads them (2.8: bucket, keyfile,
 * credentials, rootdirectory, chunksize, maxconcurrency; 3.x adds useragent), checked at start-up
 * with the key's name, and the service-account key they name.
 *
 * A key given by `keyfile` or `credentials` is used as Go's oauth2/google uses it in Distribution:
 * a JWT assertion signed with `private_key` is exchanged for an access token at the key's
 * `token_uri` (gcs-auth.ts). Without either, Google's application default credentials apply.
 *
 * STORAGE_EMULATOR_HOST (the variable Google's client libraries read) points the driver at another
 * Cloud Storage endpoint, such as an emulator or the test suite's fake; requests are still
 * authenticated when a key is configured.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { integerParam, rootPrefix, stringParam } from './driver-options.js';

export const KiB = 1024;
/** Resumable-upload chunks are multiples of this (Cloud Storage's rule), the smallest chunksize. */
export const CHUNK_QUANTUM = 256 * KiB;
/** Distribution 2.8's default chunksize (20 × 256 KiB). */
export const DEFAULT_CHUNK_SIZE = 20 * CHUNK_QUANTUM;
/** Distribution's bounds for maxconcurrency: values below the minimum are raised to it. */
export const DEFAULT_MAX_CONCURRENCY = 50;
export const MIN_CONCURRENCY = 25;
export const DEFAULT_TOKEN_URI = 'https://oauth2.googleapis.com/token';
/** The scope Distribution asks for (storage.ScopeFullControl). */
export const FULL_CONTROL_SCOPE = 'https://www.googleapis.com/auth/devstorage.full_control';

/** The fields of a service-account key file that the driver uses. */
export interface ServiceAccountKey {
  clientEmail: string;
  /** PEM (PKCS#8 or PKCS#1). */
  privateKey: string;
  privateKeyId?: string;
  projectId?: string;
  tokenURI: string;
}

export type GcsCredentials = { kind: 'key'; from: 'keyfile' | 'credentials'; key: ServiceAccountKey } | { kind: 'default' };

export interface GcsSettings {
  bucket: string;
  /** The prefix of every object name: `rootdirectory` without its slashes plus '/', or ''. */
  prefix: string;
  chunkSize: number;
  maxConcurrency: number;
  userAgent?: string;
  credentials: GcsCredentials;
  /** STORAGE_EMULATOR_HOST as an origin (scheme://host:port), or undefined for Google's endpoint. */
  endpoint?: string;
}

/** Cloud Storage's bucket naming rules (dotted names up to 222 characters, each part ≤ 63). */
const BUCKET_NAME = /^(?=.{3,222}$)[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$/;

function fail(message: string): never {
  throw new Error(`storage.gcs: ${message}`);
}

function str(o: Record<string, unknown>, key: string, where = ''): string | undefined {
  return stringParam(o, key, () => fail(`${where}${key} must be a string`));
}

function integer(o: Record<string, unknown>, key: string): number | undefined {
  return integerParam(o, key, (v) => fail(`${key} must be an integer, ${JSON.stringify(v)} invalid`));
}

/** Read and check the `storage.gcs` parameters, with Distribution 2.8's defaults. */
export function parseGcsOptions(
  o: Record<string, unknown>,
  warn: (message: string) => void = () => undefined,
  env: NodeJS.ProcessEnv = process.env,
): GcsSettings {
  const bucket = str(o, 'bucket') ?? fail('no bucket parameter provided');
  if (!BUCKET_NAME.test(bucket) || bucket.split('.').some((p) => p.length === 0 || p.length > 63)) {
    fail(`bucket "${bucket}" is not a bucket name (3 to 63 lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit)`);
  }

  const root = str(o, 'rootdirectory');
  const prefix = rootPrefix(root, () => fail(`rootdirectory "${root}" must be '/'-separated names`)) ?? '';

  const chunkSize = integer(o, 'chunksize') ?? DEFAULT_CHUNK_SIZE;
  if (chunkSize < CHUNK_QUANTUM || chunkSize % CHUNK_QUANTUM !== 0) {
    fail(`chunksize must be a positive multiple of ${CHUNK_QUANTUM} (256 KiB), got ${chunkSize}`);
  }

  let maxConcurrency = integer(o, 'maxconcurrency') ?? DEFAULT_MAX_CONCURRENCY;
  if (maxConcurrency < MIN_CONCURRENCY) {
    warn(`storage.gcs.maxconcurrency ${maxConcurrency} is below ${MIN_CONCURRENCY}: using ${MIN_CONCURRENCY}, as Distribution does`);
    maxConcurrency = MIN_CONCURRENCY;
  }

  const keyfile = str(o, 'keyfile');
  const inline = o.credentials;
  if (inline !== undefined && inline !== null && (typeof inline !== 'object' || Array.isArray(inline))) {
    fail('credentials must be a map (the fields of a service-account JSON key: type, client_email, private_key, ...)');
  }
  let credentials: GcsCredentials = { kind: 'default' };
  if (keyfile !== undefined) {
    let text: string;
    try {
      text = readFileSync(keyfile, 'utf8');
    } catch (err) {
      fail(`keyfile ${keyfile} cannot be read: ${(err as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      fail(`keyfile ${keyfile} is not JSON: ${(err as Error).message}`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(`keyfile ${keyfile} is not a JSON object`);
    credentials = { kind: 'key', from: 'keyfile', key: serviceAccountKey(json as Record<string, unknown>, `keyfile ${keyfile}: `) };
    if (inline) warn('storage.gcs.credentials is not used: keyfile is set and takes precedence, as in Distribution');
  } else if (inline) {
    credentials = { kind: 'key', from: 'credentials', key: serviceAccountKey(inline as Record<string, unknown>, 'credentials.') };
  }

  return {
    bucket,
    prefix,
    chunkSize,
    maxConcurrency,
    userAgent: str(o, 'useragent'),
    credentials,
    endpoint: emulatorEndpoint(env.STORAGE_EMULATOR_HOST),
  };
}

/**
 * The fields of a service-account key, checked as Go's google.JWTConfigFromJSON checks them
 * (type service_account, client_email, private_key), plus a private key that actually parses.
 * `where` prefixes messages: 'credentials.' names the inline key, 'keyfile F: ' the file.
 */
export function serviceAccountKey(c: Record<string, unknown>, where: string): ServiceAccountKey {
  const field = (k: string) => str(c, k, where);
  const type = field('type');
  if (type !== 'service_account') {
    fail(`${where}type must be "service_account" (a service-account key), got ${type === undefined ? 'nothing' : JSON.stringify(type)}`);
  }
  const clientEmail = field('client_email') ?? fail(`${where}client_email is missing`);
  let privateKey = field('private_key') ?? fail(`${where}private_key is missing`);
  // A key pasted with literal "\n" sequences (single-quoted YAML) is still a PEM key.
  if (!privateKey.includes('\n') && privateKey.includes('\\n')) privateKey = privateKey.replace(/\\n/g, '\n');
  try {
    const parsed = createPrivateKey(privateKey);
    if (parsed.asymmetricKeyType !== 'rsa') fail(`${where}private_key must be an RSA key, got ${parsed.asymmetricKeyType}`);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('storage.gcs:')) throw err;
    fail(`${where}private_key is not a PEM private key: ${(err as Error).message}`);
  }
  const tokenURI = field('token_uri') ?? DEFAULT_TOKEN_URI;
  if (!/^https?:\/\/[^/]+/.test(tokenURI)) fail(`${where}token_uri must be an http or https URL, got ${tokenURI}`);
  return { clientEmail, privateKey, privateKeyId: field('private_key_id'), projectId: field('project_id'), tokenURI };
}

/** STORAGE_EMULATOR_HOST as an origin; as Google's libraries read it, a bare host:port means https. */
function emulatorEndpoint(value: string | undefined): string | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `https://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`STORAGE_EMULATOR_HOST must be a URL such as http://127.0.0.1:4443, got ${value}`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname.replace(/\/+$/, '') !== '' || url.search) {
    throw new Error(`STORAGE_EMULATOR_HOST must be an http or https origin such as http://127.0.0.1:4443 (no path), got ${value}`);
  }
  return url.origin;
}
