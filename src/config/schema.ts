// The whole configuration (Distribution's `version: 0.1` format plus Wharf's
// own keys). Each field's default sits beside it. `Config` is the parsed,
// defaulted output type.
import { z } from 'zod';
import {
  anyMap, bool, duration, headerMap, int, list, oneOf, regex, section, str, strList,
} from './primitives.js';
import { checkRedisConfig } from './redis.js';
import { proxySchema } from './schema-proxy.js';
import { storageSchema } from './schema-storage.js';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
const logLevel = () => oneOf(LOG_LEVELS, { lower: true });

const logSchema = section({
  level: logLevel().optional(), // default "info", or the deprecated top-level `loglevel`
  formatter: oneOf(['text', 'json', 'logstash']).default('text'),
  fields: anyMap(), // static fields added to every log line
  accesslog: section({ disabled: bool().default(false) }),
  reportcaller: bool().default(false),
  hooks: list(
    section({
      type: str().default(''), // Distribution knows "mail"
      disabled: bool().default(false),
      levels: strList(),
      options: section({
        smtp: section({
          addr: str().default(''),
          username: str().default(''),
          password: str().default(''),
          insecure: bool().default(false),
        }),
        from: str().default(''),
        to: strList(),
      }),
    }),
  ),
});

export const AUTH_TYPES = ['silly', 'token', 'htpasswd', 'none'] as const;

const authSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { [v]: {} } : (v ?? {})),
  z
    .object(
      {
        silly: section({ realm: str(), service: str() }).optional(),
        token: section({
          realm: str(),
          service: str(),
          issuer: str(),
          rootcertbundle: str().optional(),
          jwks: str().optional(),
          autoredirect: bool().default(false),
          autoredirectpath: str().optional(),
          signingalgorithms: strList().optional(),
        }).optional(),
        htpasswd: section({ realm: str(), path: str() }).optional(),
        none: z.unknown().optional(), // `auth: none` means no authentication
      },
      { error: 'expected a mapping, or the name of an authentication type' },
    )
    .catchall(z.unknown())
    .superRefine((a, ctx) => {
      const types = Object.keys(a).filter((k) => a[k] !== undefined);
      for (const k of types) {
        if (!(AUTH_TYPES as readonly string[]).includes(k)) {
          ctx.addIssue({ code: 'custom', path: [k], input: a[k], message: `unknown authentication type "${k}" (expected one of silly, token, htpasswd)` });
        }
      }
      if (types.length > 1) {
        ctx.addIssue({ code: 'custom', input: undefined, message: `must provide exactly one type. Provided: ${types.join(', ')}` });
      }
    })
    // Only the configured type is present in the output.
    .transform(({ silly, token, htpasswd }) => ({ ...(silly && { silly }), ...(token && { token }), ...(htpasswd && { htpasswd }) })),
);

const middlewareList = () =>
  list(section({ name: str(), disabled: bool().default(false), options: anyMap() }));

const middlewareSchema = section({
  registry: middlewareList(),
  repository: middlewareList(),
  storage: middlewareList(),
});

const reportingSchema = section({
  bugsnag: section({ apikey: str().default(''), releasestage: str().default(''), endpoint: str().default('') }),
  newrelic: section({ licensekey: str().default(''), name: str().default(''), verbose: bool().default(false) }),
});

const httpSchema = section({
  addr: str().default(':5000'),
  net: z.preprocess((v) => (v === '' ? undefined : v), oneOf(['tcp', 'unix']).default('tcp')),
  prefix: str().default(''), // URL path prefix, e.g. "/my/nested/registry/"
  host: str()
    .refine((h) => h === '' || URL.canParse(h), { error: 'expected an absolute URL such as "https://registry.example.com:5000"' })
    .default(''), // externally reachable base URL
  secret: str().default(''), // empty: the server makes a random one
  relativeurls: bool().default(false),
  draintimeout: duration().default(0),
  tls: section({
    certificate: str().default(''),
    key: str().default(''),
    clientcas: strList(),
    clientauth: oneOf(['request-client-cert', 'require-any-client-cert', 'verify-client-cert-if-given', 'require-and-verify-client-cert']).optional(),
    minimumtls: oneOf(['tls1.0', 'tls1.1', 'tls1.2', 'tls1.3']).optional(),
    ciphersuites: strList(),
    letsencrypt: section({
      cachefile: str().default(''),
      email: str().default(''),
      hosts: strList(),
      directoryurl: str().default(''),
    }),
  }),
  debug: section({
    addr: str().default(''),
    prometheus: section({ enabled: bool().default(false), path: str().default('/metrics') }),
  }),
  headers: headerMap(), // added to every response
  http2: section({ disabled: bool().default(false) }),
  h2c: section({ enabled: bool().default(false) }),
});

const notificationsSchema = section({
  events: section({ includereferences: bool().default(false) }),
  endpoints: list(
    section({
      name: str().default(''),
      disabled: bool().default(false),
      url: str().default(''),
      headers: headerMap(),
      timeout: duration().default(1000),
      threshold: int(0).default(10),
      backoff: duration().default(1000),
      ignoredmediatypes: strList(),
      ignore: section({ mediatypes: strList(), actions: strList() }),
    }),
  ),
});

const redisSchema = section({
  addr: str().default(''),
  addrs: strList(),
  username: str().optional(),
  password: str().optional(),
  db: int(0).default(0),
  dialtimeout: duration().optional(),
  readtimeout: duration().optional(),
  writetimeout: duration().optional(),
  pool: section({ maxidle: int(0).optional(), maxactive: int(0).optional(), idletimeout: duration().optional() }),
  tls: section({
    enabled: bool().default(false),
    certificate: str().optional(),
    key: str().optional(),
    rootcas: strList(),
    clientcas: strList(), // Distribution 3.0's name for rootcas
  }),
  // go-redis UniversalOptions (Distribution 3)
  clientname: str().optional(),
  protocol: int(0).optional(),
  sentinelusername: str().optional(),
  sentinelpassword: str().optional(),
  maxretries: int().optional(),
  minretrybackoff: duration().optional(),
  maxretrybackoff: duration().optional(),
  contexttimeoutenabled: bool().optional(),
  poolfifo: bool().optional(),
  poolsize: int(0).optional(),
  pooltimeout: duration().optional(),
  minidleconns: int(0).optional(),
  maxidleconns: int(0).optional(),
  maxactiveconns: int(0).optional(),
  connmaxidletime: duration().optional(),
  connmaxlifetime: duration().optional(),
  maxredirects: int().optional(),
  readonly: bool().optional(),
  routebylatency: bool().optional(),
  routerandomly: bool().optional(),
  mastername: str().optional(),
  disableidentity: bool().optional(),
  identitysuffix: str().optional(),
  unstableresp3: bool().optional(),
});

const CHECK_INTERVAL = 10_000;
const checkURL = () =>
  str().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), {
    error: 'expected an absolute http:// or https:// URL such as "http://backend:8080/health"',
  });
const checkAddr = () =>
  str().refine((a) => /^(\[[^\]]+\]|[^:[\]]*):\d{1,5}$/.test(a) && Number(a.slice(a.lastIndexOf(':') + 1)) <= 65535, {
    error: 'expected HOST:PORT with a numeric port, such as "redis:6379"',
  });
const healthSchema = section({
  storagedriver: section({
    enabled: bool().default(false),
    interval: duration().default(CHECK_INTERVAL),
    threshold: int(0).default(0),
  }),
  file: list(section({ file: str(), interval: duration().default(CHECK_INTERVAL), threshold: int(0).default(0) })),
  http: list(
    section({
      uri: checkURL(),
      headers: headerMap(),
      statuscode: int().default(200),
      timeout: duration().default(0),
      interval: duration().default(CHECK_INTERVAL),
      threshold: int(0).default(0),
    }),
  ),
  tcp: list(
    section({
      addr: checkAddr(),
      timeout: duration().default(0),
      interval: duration().default(CHECK_INTERVAL),
      threshold: int(0).default(0),
    }),
  ),
});

const validationSchema = section({
  enabled: bool().default(false), // deprecated; see the output note below
  disabled: bool().default(false),
  manifests: section({
    urls: section({ allow: list(regex()), deny: list(regex()) }),
    indexes: section({
      platforms: oneOf(['all', 'none', 'list'], { lower: true }).default('all'), // Distribution 3's default
      platformlist: list(section({ architecture: str().default(''), os: str().default('') })),
    }),
  }),
}).transform((v) => ({
  ...v,
  // Distribution validates manifests unless `disabled: true` (and `enabled: true`
  // forces validation on). This is the effective switch the server should read.
  enabled: v.enabled || !v.disabled,
}));

export const configSchema = z
  .object(
    {
      version: z.literal('0.1').default('0.1'), // checked by the loader first
      log: logSchema,
      loglevel: logLevel().optional(), // deprecated: use log.level
      storage: storageSchema,
      auth: authSchema,
      middleware: middlewareSchema,
      reporting: reportingSchema,
      http: httpSchema,
      notifications: notificationsSchema,
      redis: redisSchema,
      health: healthSchema,
      proxy: proxySchema,
      compatibility: section({
        schema1: section({ signingkeyfile: str().default(''), enabled: bool().default(false) }),
      }),
      validation: validationSchema,
      policy: section({ repository: section({ classes: strList() }) }),
      // Non-positive values mean the default, like Distribution.
      catalog: section({ maxentries: int().default(1000).transform((n) => (n > 0 ? n : 1000)) }),
      tags: section({ maxtags: int(0).optional() }), // Distribution 3
    },
    { error: 'expected a mapping' },
  )
  .superRefine(checkRedisConfig)
  .transform(({ loglevel, ...c }) => ({
    ...c,
    log: { ...c.log, level: c.log.level ?? loglevel ?? ('info' as const) },
  }));

/** The parsed configuration, with every default filled in. */
export type Config = z.output<typeof configSchema>;
