/**
 * The `swift` driver's parameters, as Distribution 2.8's swift driver reads them, checked at
 * start-up: a missing or malformed value fails with the key's name and what was expected.
 */
import { boolParam, httpURL, integerParam, isUnset, stringParam } from './driver-options.js';

export type EndpointType = 'public' | 'internal' | 'admin';
export type TempURLMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

export interface SwiftSettings {
  authURL: string;
  /** 1 (TempAuth, RGW's /auth/v1.0), 2 (Keystone v2.0) or 3 (Keystone v3). */
  authVersion: 1 | 2 | 3;
  username: string;
  password: string;
  container: string;
  tenant?: string;
  tenantId?: string;
  domain?: string;
  domainId?: string;
  tenantDomain?: string;
  tenantDomainId?: string;
  trustId?: string;
  region?: string;
  /** Which catalog URL Keystone's answer is read for; unset is public (v1 auth has no catalog). */
  endpointType?: EndpointType;
  insecureSkipVerify: boolean;
  /** Bytes per segment of a file written through a writer. */
  chunkSize: number;
  /** Raw `prefix`, joined to names exactly as Distribution joins it (see SwiftNames). */
  prefix: string;
  /** The temp-URL key to use (and to set on the account or container when it differs). */
  secretKey?: string;
  /** HP Cloud style temp URLs: the signature becomes `<tenantid>:<accesskey>:<signature>`. */
  accessKey?: string;
  /** Used only when the server's /info cannot be read: container rather than account key. */
  tempURLContainerKey: boolean;
  /** Used only when the server's /info cannot be read: the methods temp URLs may be made for. */
  tempURLMethods: TempURLMethod[];
}

const MiB = 1024 * 1024;
/** Distribution's default and smallest segment sizes. */
export const DEFAULT_CHUNK_SIZE = 20 * MiB;
export const MIN_CHUNK_SIZE = MiB;
/** Swift's default largest object (max_file_size): a bigger segment would be refused at upload time. */
export const MAX_CHUNK_SIZE = 5 * 1024 * MiB;

const ENDPOINT_TYPES: readonly EndpointType[] = ['public', 'internal', 'admin'];
const TEMP_URL_METHODS: readonly TempURLMethod[] = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'];

function fail(message: string): never {
  throw new Error(`storage.swift: ${message}`);
}

/** Distribution turns numeric tenant names and ids (YAML integers, env values) into strings. */
function str(o: Record<string, unknown>, key: string): string | undefined {
  return stringParam(o, key, (v) => fail(`${key} must be a string, got ${JSON.stringify(v)}`));
}

function required(o: Record<string, unknown>, key: string): string {
  return str(o, key) ?? fail(`no ${key} parameter provided`);
}

function bool(o: Record<string, unknown>, key: string): boolean {
  return boolParam(o, key, false, (v) => fail(`${key} must be true or false, got ${JSON.stringify(v)}`));
}

function int(o: Record<string, unknown>, key: string): number | undefined {
  return integerParam(o, key, (v) => fail(`${key} must be an integer, got ${JSON.stringify(v)}`));
}

/** A YAML list, or a comma-separated string (an environment override). */
function methods(o: Record<string, unknown>, key: string): TempURLMethod[] {
  const v = o[key];
  if (isUnset(v)) return [];
  const items = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : fail(`${key} must be a list of HTTP methods`);
  return items.map((m) => {
    const name = typeof m === 'string' ? m.trim().toUpperCase() : '';
    if (!(TEMP_URL_METHODS as readonly string[]).includes(name)) {
      fail(`${key}: ${JSON.stringify(m)} is not one of ${TEMP_URL_METHODS.join(', ')}`);
    }
    return name as TempURLMethod;
  });
}

/**
 * The auth version: `authversion` when given, else guessed from `authurl` as Distribution's Swift
 * client guesses it (the URL names "v3", "v2" or "v1").
 */
function authVersionOf(o: Record<string, unknown>, authURL: string): 1 | 2 | 3 {
  const given = int(o, 'authversion');
  if (given !== undefined && given !== 0) {
    if (given !== 1 && given !== 2 && given !== 3) fail(`authversion must be 1, 2 or 3, got ${given}`);
    return given;
  }
  if (authURL.includes('v3')) return 3;
  if (authURL.includes('v2')) return 2;
  if (authURL.includes('v1')) return 1;
  return fail(`cannot tell the auth version from authurl ${authURL} (no v1, v2 or v3 in it): set authversion`);
}

/** Read and check the `storage.swift` parameters, with Distribution's defaults. */
export function parseSwiftOptions(o: Record<string, unknown>, warn: (message: string) => void = () => undefined): SwiftSettings {
  const username = required(o, 'username');
  const password = required(o, 'password');
  const authURL = required(o, 'authurl');
  httpURL(authURL, () => fail(`authurl must be an http or https URL, got ${authURL}`));
  const container = required(o, 'container');
  if (container.includes('/') || Buffer.byteLength(container) > 256) {
    fail(`container ${JSON.stringify(container)} is not a Swift container name (at most 256 bytes, no '/')`);
  }
  const chunkSize = int(o, 'chunksize') ?? DEFAULT_CHUNK_SIZE;
  if (chunkSize < MIN_CHUNK_SIZE) fail(`the chunksize ${chunkSize} parameter should be a number that is larger than or equal to ${MIN_CHUNK_SIZE}`);
  if (chunkSize > MAX_CHUNK_SIZE) fail(`the chunksize ${chunkSize} parameter should be at most ${MAX_CHUNK_SIZE} (Swift's largest object)`);
  const endpointRaw = str(o, 'endpointtype');
  const endpointType = endpointRaw === undefined ? undefined : (endpointRaw.toLowerCase() as EndpointType);
  if (endpointType !== undefined && !ENDPOINT_TYPES.includes(endpointType)) {
    fail(`endpointtype must be one of ${ENDPOINT_TYPES.join(', ')}, got ${endpointRaw}`);
  }
  const authVersion = authVersionOf(o, authURL);
  if (authVersion === 1) {
    const unused = ['tenant', 'tenantid', 'domain', 'domainid', 'tenantdomain', 'tenantdomainid', 'trustid', 'region', 'endpointtype'].filter(
      (k) => str(o, k) !== undefined,
    );
    if (unused.length > 0) warn(`storage.swift: ${unused.join(', ')} are not used with v1 auth (authurl ${authURL})`);
  }
  if (str(o, 'rootdirectory') !== undefined) {
    warn('storage.swift.rootdirectory is not used (Distribution 2.8 ignores it too): set prefix');
  }
  return {
    authURL,
    authVersion,
    username,
    password,
    container,
    tenant: str(o, 'tenant'),
    tenantId: str(o, 'tenantid'),
    domain: str(o, 'domain'),
    domainId: str(o, 'domainid'),
    tenantDomain: str(o, 'tenantdomain'),
    tenantDomainId: str(o, 'tenantdomainid'),
    trustId: str(o, 'trustid'),
    region: str(o, 'region'),
    endpointType,
    insecureSkipVerify: bool(o, 'insecureskipverify'),
    chunkSize,
    prefix: str(o, 'prefix') ?? '',
    secretKey: str(o, 'secretkey'),
    accessKey: str(o, 'accesskey'),
    tempURLContainerKey: bool(o, 'tempurlcontainerkey'),
    tempURLMethods: methods(o, 'tempurlmethods'),
  };
}

/**
 * Object names, as Distribution's swift driver makes them: a path's file lives at
 * `<prefix>/files<path>` and a writer's segments at `<prefix>/segments/<3 hex>/<37 hex>/<16-digit n>`,
 * each with leading and trailing '/' trimmed (a prefix `p/` gives `p//files/...`, as in Distribution).
 */
export class SwiftNames {
  constructor(private readonly prefix: string) {}

  private static trim(s: string): string {
    return s.replace(/^\/+/, '').replace(/\/+$/, '');
  }

  /** The object name of a path ('/' gives the name the children of the root are below). */
  file(path: string): string {
    return SwiftNames.trim(`${this.prefix}/files${path}`);
  }

  /** The name prefix of a directory's children. */
  children(path: string): string {
    return `${this.file(path)}/`;
  }

  /** The path of an object name below files/, or null when the name is not below it. */
  pathOf(name: string): string | null {
    const root = this.children('/');
    return name.startsWith(root) ? `/${name.slice(root.length)}` : null;
  }

  /** A segment directory named by 40 hex digits (a writer's: sha1 of its path and 32 random bytes). */
  segments(hex40: string): string {
    return SwiftNames.trim(`${this.prefix}/segments/${hex40.slice(0, 3)}/${hex40.slice(3)}`);
  }

  /** Whether a manifest's segment prefix is a segment directory of this layout: nothing else is ever deleted as segments. */
  isSegments(prefix: string): boolean {
    const root = `${SwiftNames.trim(`${this.prefix}/segments/`)}/`;
    return prefix.startsWith(root) && /^[0-9a-f]{3}\/[0-9a-f]{37}$/.test(prefix.slice(root.length));
  }
}

/** The name of segment `n` in a segment directory. */
export function segmentName(segments: string, n: number): string {
  return `${segments}/${String(n).padStart(16, '0')}`;
}

/** The segment number of a segment's name, or null for anything else under the directory. */
export function segmentNumber(segments: string, name: string): number | null {
  const m = /^\/(\d{16})$/.exec(name.slice(segments.length));
  return name.startsWith(segments) && m ? Number(m[1]) : null;
}
