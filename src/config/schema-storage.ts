// The `storage` section: exactly one driver plus the shared sub-sections.
// Parsed output is normalized to `storage.driver = { name, options }`.
import { resolve } from 'node:path';
import { z } from 'zod';
import { bool, duration, int, paramBool, paramInt, section, str, strList } from './primitives.js';

export const STORAGE_DRIVERS = ['filesystem', 'inmemory', 's3', 'azure', 'gcs', 'swift', 'oss'] as const;
export type StorageDriverName = (typeof STORAGE_DRIVERS)[number];

/** Keys of `storage` that configure the registry, not a driver. */
export const STORAGE_NON_DRIVER_KEYS = ['delete', 'cache', 'maintenance', 'redirect', 'tag', 'gc'] as const;

export const DEFAULT_FILESYSTEM_ROOT = '/var/lib/registry';
export const FILESYSTEM_MIN_THREADS = 25;

const MAXTHREADS_MSG = `expected an integer ≥ ${FILESYSTEM_MIN_THREADS}`;

// Driver parameters: an absent driver key is `undefined`; `inmemory:` with
// nothing after it (null) still selects the driver.
const driver = <S extends z.core.$ZodLooseShape>(shape: S) => section(shape).optional();

const filesystemOptions = {
  // Relative paths resolve against the current directory, like Distribution.
  rootdirectory: str().default(DEFAULT_FILESYSTEM_ROOT).transform((p) => resolve(p)),
  // Distribution raises values below 25 (and non-positive ones) to 25.
  maxthreads: z
    .union([z.int(), z.string()], { error: MAXTHREADS_MSG })
    .transform((v, ctx) => {
      const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
      if (!Number.isSafeInteger(n)) {
        ctx.issues.push({ code: 'custom', message: MAXTHREADS_MSG, input: v });
        return z.NEVER;
      }
      return Math.max(n, FILESYSTEM_MIN_THREADS);
    })
    .default(100),
};

const s3Options = {
  accesskey: str().optional(),
  secretkey: str().optional(),
  sessiontoken: str().optional(),
  region: str().optional(),
  regionendpoint: str().optional(),
  forcepathstyle: paramBool().optional(),
  accelerate: paramBool().optional(),
  bucket: str().optional(),
  encrypt: paramBool().optional(),
  keyid: str().optional(),
  secure: paramBool().optional(),
  skipverify: paramBool().optional(),
  v4auth: paramBool().optional(),
  chunksize: paramInt(0).optional(),
  multipartcopychunksize: paramInt(0).optional(),
  multipartcopymaxconcurrency: paramInt(0).optional(),
  multipartcopythresholdsize: paramInt(0).optional(),
  rootdirectory: str().optional(),
  storageclass: str().optional(),
  objectacl: str().optional(),
  useragent: str().optional(),
  usedualstack: paramBool().optional(),
  usefipsendpoint: paramBool().optional(),
  redirectendpoint: str().optional(),
  loglevel: str().optional(),
};

const azureOptions = {
  accountname: str().optional(),
  accountkey: str().optional(),
  container: str().optional(),
  realm: str().optional(),
  rootdirectory: str().optional(),
  connectionstring: str().optional(),
  serviceurl: str().optional(),
  skipverify: paramBool().optional(),
  max_retries: paramInt(0).optional(),
  retry_delay: str().optional(),
  credentials: section({
    type: str().optional(),
    clientid: str().optional(),
    tenantid: str().optional(),
    secret: str().optional(),
  }).optional(),
};

const gcsOptions = {
  bucket: str().optional(),
  keyfile: str().optional(),
  rootdirectory: str().optional(),
  chunksize: paramInt(0).optional(),
  maxconcurrency: paramInt(0).optional(),
  useragent: str().optional(),
  credentials: section({
    type: str().optional(),
    project_id: str().optional(),
    private_key_id: str().optional(),
    private_key: str().optional(),
    client_email: str().optional(),
    client_id: str().optional(),
    auth_uri: str().optional(),
    token_uri: str().optional(),
    auth_provider_x509_cert_url: str().optional(),
    client_x509_cert_url: str().optional(),
  }).optional(),
};

const swiftOptions = {
  username: str().optional(),
  password: str().optional(),
  authurl: str().optional(),
  // Distribution takes numeric tenant names and ids (YAML integers) as strings.
  tenant: z.union([str(), z.number()]).transform(String).optional(),
  tenantid: z.union([str(), z.number()]).transform(String).optional(),
  domain: str().optional(),
  domainid: str().optional(),
  tenantdomain: str().optional(),
  tenantdomainid: str().optional(),
  trustid: str().optional(),
  insecureskipverify: paramBool().optional(),
  region: str().optional(),
  authversion: paramInt(0).optional(),
  container: str().optional(),
  prefix: str().optional(),
  rootdirectory: str().optional(),
  endpointtype: str().optional(),
  chunksize: paramInt(0).optional(),
  secretkey: str().optional(),
  accesskey: str().optional(),
  tempurlcontainerkey: paramBool().optional(),
  tempurlmethods: strList().optional(),
};

const ossOptions = {
  accesskeyid: str().optional(),
  accesskeysecret: str().optional(),
  region: str().optional(),
  endpoint: str().optional(),
  internal: paramBool().optional(),
  bucket: str().optional(),
  encrypt: paramBool().optional(),
  encryptionkeyid: str().optional(),
  secure: paramBool().optional(),
  skipverify: paramBool().optional(),
  chunksize: paramInt(0).optional(),
  rootdirectory: str().optional(),
};

const storageShape = {
  filesystem: driver(filesystemOptions),
  inmemory: driver({}), // takes no parameters
  s3: driver(s3Options),
  azure: driver(azureOptions),
  gcs: driver(gcsOptions),
  swift: driver(swiftOptions),
  oss: driver(ossOptions),

  delete: section({ enabled: bool().default(false) }),
  cache: section({
    // "inmemory" or "redis"; anything else disables the cache with a warning.
    blobdescriptor: str().optional(),
    layerinfo: str().optional(), // deprecated name of blobdescriptor
    blobdescriptorsize: int(0).default(10000),
  }),
  maintenance: section({
    // Distribution purges abandoned uploads by default.
    uploadpurging: section({
      enabled: bool().default(true),
      age: duration().default(168 * 3_600_000),
      interval: duration().default(24 * 3_600_000),
      dryrun: bool().default(false),
    }),
    readonly: section({ enabled: bool().default(false) }),
  }),
  redirect: section({ disable: bool().default(false) }),
  tag: section({ concurrencylimit: int(0).default(0) }), // 0: number of CPUs
  // Wharf's own online garbage collection.
  gc: section({
    enabled: bool().default(false),
    interval: duration().default(24 * 3_600_000),
    graceperiod: duration().default(3_600_000),
  }),
};

type Shape = typeof storageShape;
type Out<K extends keyof Shape> = z.output<Shape[K]>;

export type StorageDriverConfig = {
  [K in StorageDriverName]: { name: K; options: NonNullable<Out<K>> };
}[StorageDriverName];

const KNOWN_STORAGE_KEYS = new Set<string>([...STORAGE_DRIVERS, ...STORAGE_NON_DRIVER_KEYS]);

/** Distribution's `storage: inmemory` shorthand for `storage: {inmemory: {}}`. */
export function expandStorageShorthand(v: unknown): unknown {
  return typeof v === 'string' ? { [v]: {} } : v;
}

export const storageSchema = z.preprocess(
  (v) => expandStorageShorthand(v) ?? {},
  z
    // Unknown keys under storage would be driver names in Distribution;
    // they are kept so they can be reported as such.
    .object(storageShape, { error: 'expected a mapping, or the name of a storage driver' })
    .catchall(z.unknown())
    .transform((s, ctx) => {
      const unknown = Object.keys(s).filter((k) => !KNOWN_STORAGE_KEYS.has(k));
      for (const k of unknown) {
        ctx.issues.push({
          code: 'custom',
          path: [k],
          input: s[k],
          message: `unknown storage driver "${k}" (expected one of ${STORAGE_DRIVERS.join(', ')})`,
        });
      }
      const given = STORAGE_DRIVERS.filter((d) => s[d] !== undefined);
      if (unknown.length > 0) return z.NEVER;
      if (given.length === 0) {
        ctx.issues.push({ code: 'custom', input: undefined, message: 'no storage configuration provided' });
        return z.NEVER;
      }
      if (given.length > 1) {
        ctx.issues.push({
          code: 'custom',
          input: undefined,
          message: `must provide exactly one storage type. Also provided: ${given.slice(1).join(', ')} (besides ${given[0]})`,
        });
        return z.NEVER;
      }
      const name = given[0];
      const driverConfig = { name, options: s[name] } as StorageDriverConfig;
      const { blobdescriptor, layerinfo, blobdescriptorsize } = s.cache;
      const kind = blobdescriptor ?? layerinfo;
      return {
        driver: driverConfig,
        delete: s.delete,
        cache: {
          blobdescriptor: kind === 'inmemory' || kind === 'redis' ? kind : undefined,
          blobdescriptorsize,
        },
        maintenance: s.maintenance,
        redirect: s.redirect,
        tag: s.tag,
        gc: s.gc,
      };
    }),
);
