import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, SAMPLE_CONFIG_YAML, errorOf, parse } from './helpers.js';

describe('parsing a full Distribution configuration', () => {
  const { config, warnings } = parse(SAMPLE_CONFIG_YAML);

  it('reads every section with durations in milliseconds', () => {
    assert.equal(config.version, '0.1');
    assert.equal(config.log.level, 'debug');
    assert.equal(config.log.accesslog.disabled, true);
    assert.deepEqual(config.log.fields, { service: 'registry', environment: 'staging' });
    assert.equal(config.log.hooks[0].options.smtp.addr, 'mail.example.com:25');
    assert.deepEqual(config.log.hooks[0].options.to, ['errors@example.com']);
    assert.equal(config.storage.driver.name, 'filesystem');
    assert.deepEqual(config.storage.driver.options, { rootdirectory: '/var/lib/registry', maxthreads: 100 });
    assert.equal(config.storage.maintenance.uploadpurging.age, 168 * 3600 * 1000);
    assert.equal(config.storage.cache.blobdescriptor, 'redis');
    assert.equal(config.storage.tag.concurrencylimit, 8);
    assert.equal(config.auth.token?.realm, 'token-realm');
    assert.deepEqual(config.auth.token?.signingalgorithms, ['EdDSA', 'HS256']);
    assert.equal(config.middleware.storage[0].name, 'cloudfront');
    assert.equal(config.middleware.storage[0].options.duration, '3000s');
    assert.equal(config.reporting.newrelic.verbose, true);
    assert.equal(config.http.addr, 'localhost:5000');
    assert.equal(config.http.draintimeout, 60_000);
    assert.deepEqual(config.http.tls.clientcas, ['/path/to/ca.pem', '/path/to/another/ca.pem']);
    assert.deepEqual(config.http.tls.letsencrypt.hosts, ['myregistryaddress.org']);
    assert.deepEqual(config.http.headers, { 'X-Content-Type-Options': ['nosniff'] });
    assert.equal(config.notifications.endpoints[0].timeout, 1000);
    assert.deepEqual(config.notifications.endpoints[0].ignore.actions, ['pull']);
    assert.equal(config.redis.dialtimeout, 10);
    assert.equal(config.redis.pool.idletimeout, 300_000);
    assert.equal(config.health.http[0].statuscode, 200);
    assert.equal(config.health.tcp[0].timeout, 3000);
    assert.equal(config.proxy.ttl, 168 * 3600 * 1000);
    assert.equal(config.compatibility.schema1.enabled, true);
    assert.equal(config.validation.manifests.indexes.platforms, 'list');
    assert.deepEqual(config.validation.manifests.indexes.platformlist, [{ architecture: 'amd64', os: 'linux' }]);
    assert.equal(config.catalog.maxentries, 1000);
  });

  it('only warns that loglevel is deprecated and that blobdescriptorsize does not apply to redis', () => {
    assert.deepEqual(warnings, [
      '"loglevel" is deprecated; use "log.level" instead',
      'storage.cache.blobdescriptorsize: applies to the inmemory cache only; ignored with redis',
    ]);
  });
});

describe('defaults', () => {
  it('fills in Distribution defaults for a minimal file', () => {
    const { config, warnings } = parse(BASE);
    assert.deepEqual(warnings, []);
    assert.equal(config.log.level, 'info');
    assert.equal(config.log.formatter, 'text');
    assert.equal(config.log.accesslog.disabled, false);
    assert.equal(config.http.addr, ':5000');
    assert.equal(config.http.net, 'tcp');
    assert.equal(config.http.prefix, '');
    assert.equal(config.http.host, '');
    assert.equal(config.http.secret, '');
    assert.equal(config.http.relativeurls, false);
    assert.equal(config.storage.delete.enabled, false);
    assert.equal(config.storage.redirect.disable, false);
    assert.equal(config.storage.maintenance.readonly.enabled, false);
    assert.deepEqual(config.storage.maintenance.uploadpurging, {
      enabled: true, age: 168 * 3_600_000, interval: 24 * 3_600_000, dryrun: false,
    });
    assert.equal(config.catalog.maxentries, 1000);
    assert.equal(config.validation.enabled, true, 'validation is on unless disabled');
    assert.deepEqual(config.auth, {});
  });

  it('uses the deprecated loglevel only when log.level is absent, in any case', () => {
    assert.equal(parse(`${BASE}loglevel: WARN\n`).config.log.level, 'warn');
    assert.equal(parse(`${BASE}loglevel: warn\nlog:\n  level: error\n`).config.log.level, 'error');
  });

  it('treats a non-positive catalog.maxentries as the default', () => {
    assert.equal(parse(`${BASE}catalog:\n  maxentries: 0\n`).config.catalog.maxentries, 1000);
    assert.equal(parse(`${BASE}catalog:\n  maxentries: 50\n`).config.catalog.maxentries, 50);
  });

  it('computes validation.enabled like Distribution', () => {
    assert.equal(parse(`${BASE}validation:\n  disabled: true\n`).config.validation.enabled, false);
    assert.equal(parse(`${BASE}validation:\n  disabled: true\n  enabled: true\n`).config.validation.enabled, true);
  });
});

describe('YAML like Go yaml.v2', () => {
  it('accepts YAML 1.1 booleans', () => {
    const { config } = parse(`${BASE}http:\n  relativeurls: yes\nlog:\n  accesslog:\n    disabled: on\n`);
    assert.equal(config.http.relativeurls, true);
    assert.equal(config.log.accesslog.disabled, true);
  });

  it('keeps the source text of string values', () => {
    const { config } = parse(`${BASE}http:\n  secret: 0123\nproxy:\n  username: no\n  password: 1e3\n`);
    assert.equal(config.http.secret, '0123');
    assert.equal(config.proxy.username, 'no');
    assert.equal(config.proxy.password, '1e3');
  });

  it('resolves anchors and merge keys', () => {
    const yaml = `${BASE}x-common: &hdrs\n  X-A: [a]\nhttp:\n  headers:\n    <<: *hdrs\n    X-B: [b]\n`;
    const { config, warnings } = parse(yaml);
    assert.deepEqual(config.http.headers, { 'X-B': ['b'], 'X-A': ['a'] });
    assert.deepEqual(warnings, ['unknown configuration key "x-common" (ignored)']);
  });

  it('warns about duplicate keys and uses the last one', () => {
    const { config, warnings } = parse(`${BASE}http:\n  addr: :1\n  addr: :2\n`);
    assert.equal(config.http.addr, ':2');
    assert.deepEqual(warnings, ['duplicate configuration key "http.addr" (the last one is used)']);
  });
});

describe('unknown keys', () => {
  it('warn with the dotted path and are ignored', () => {
    const yaml = `${BASE}http:\n  foo: 1\n  Addr: :6000\nnotifications:\n  endpoints:\n    - name: a\n      bogus: 1\nfrobnicate: true\n`;
    const { config, warnings } = parse(yaml);
    assert.deepEqual(warnings, [
      'unknown configuration key "http.foo" (ignored)',
      'unknown configuration key "http.Addr" (ignored; did you mean "http.addr"?)',
      'unknown configuration key "notifications.endpoints[0].bogus" (ignored)',
      'unknown configuration key "frobnicate" (ignored)',
    ]);
    assert.equal(config.http.addr, ':5000');
  });

  it('are accepted inside free-form maps', () => {
    const { warnings } = parse(`${BASE}log:\n  fields:\n    anything: goes\n`);
    assert.deepEqual(warnings, []);
  });
});

describe('type errors name the key, the environment variable and the value', () => {
  const cases: Array<[string, string]> = [
    ['log:\n  level: loud\n', 'log.level (REGISTRY_LOG_LEVEL): expected one of error, warn, info, debug, got "loud"'],
    ['log:\n  formatter: xml\n', 'log.formatter (REGISTRY_LOG_FORMATTER): expected one of text, json, logstash, got "xml"'],
    ['log:\n  accesslog:\n    disabled: maybe\n', 'log.accesslog.disabled (REGISTRY_LOG_ACCESSLOG_DISABLED): expected true or false, got "maybe"'],
    ['log:\n  hooks: {}\n', 'log.hooks (REGISTRY_LOG_HOOKS): expected a list, got a mapping'],
    ['storage:\n  inmemory:\n  delete:\n    enabled: 1\n', 'storage.delete.enabled (REGISTRY_STORAGE_DELETE_ENABLED): expected true or false, got 1'],
    ['storage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      age: 7 days\n', 'storage.maintenance.uploadpurging.age (REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE): expected a duration'],
    ['storage:\n  s3:\n    secure: sometimes\n', 'storage.s3.secure (REGISTRY_STORAGE_S3_SECURE): expected true or false, got "sometimes"'],
    ['auth:\n  htpasswd:\n    realm: r\n', 'auth.htpasswd.path (REGISTRY_AUTH_HTPASSWD_PATH): missing; expected a string'],
    ['middleware:\n  registry:\n    - options: {}\n', 'middleware.registry[0].name (REGISTRY_MIDDLEWARE_REGISTRY_0_NAME): missing; expected a string'],
    ['reporting:\n  newrelic:\n    verbose: loud\n', 'reporting.newrelic.verbose (REGISTRY_REPORTING_NEWRELIC_VERBOSE): expected true or false, got "loud"'],
    ['http:\n  net: udp\n', 'http.net (REGISTRY_HTTP_NET): expected one of tcp, unix, got "udp"'],
    ['http:\n  host: not a url\n', 'http.host (REGISTRY_HTTP_HOST): expected an absolute URL'],
    ['http:\n  tls:\n    clientcas: /one.pem\n', 'http.tls.clientcas (REGISTRY_HTTP_TLS_CLIENTCAS): expected a list, got "/one.pem"'],
    ['http:\n  tls:\n    minimumtls: ssl3\n', 'http.tls.minimumtls (REGISTRY_HTTP_TLS_MINIMUMTLS): expected one of tls1.0, tls1.1, tls1.2, tls1.3, got "ssl3"'],
    ['http:\n  draintimeout: soon\n', 'http.draintimeout (REGISTRY_HTTP_DRAINTIMEOUT): expected a duration such as "5s"'],
    ['http:\n  debug:\n    prometheus:\n      enabled: 2\n', 'http.debug.prometheus.enabled (REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED): expected true or false, got 2'],
    ['notifications:\n  endpoints:\n    - name: a\n      threshold: many\n', 'notifications.endpoints[0].threshold (REGISTRY_NOTIFICATIONS_ENDPOINTS_0_THRESHOLD): expected an integer ≥ 0, got "many"'],
    ['redis:\n  db: first\n', 'redis.db (REGISTRY_REDIS_DB): expected an integer ≥ 0, got "first"'],
    ['redis:\n  pool:\n    idletimeout: 5 minutes\n', 'redis.pool.idletimeout (REGISTRY_REDIS_POOL_IDLETIMEOUT): expected a duration'],
    ['health:\n  storagedriver:\n    threshold: -1\n', 'health.storagedriver.threshold (REGISTRY_HEALTH_STORAGEDRIVER_THRESHOLD): expected an integer ≥ 0, got -1'],
    ['health:\n  tcp:\n    - timeout: 3s\n', 'health.tcp[0].addr (REGISTRY_HEALTH_TCP_0_ADDR): missing; expected a string'],
    ['proxy:\n  ttl: forever\n', 'proxy.ttl (REGISTRY_PROXY_TTL): expected a duration'],
    ['validation:\n  manifests:\n    urls:\n      allow: ["(unclosed"]\n', 'validation.manifests.urls.allow[0] (REGISTRY_VALIDATION_MANIFESTS_URLS_ALLOW_0): expected a valid regular expression, got "(unclosed"'],
    ['validation:\n  manifests:\n    indexes:\n      platforms: some\n', 'validation.manifests.indexes.platforms (REGISTRY_VALIDATION_MANIFESTS_INDEXES_PLATFORMS): expected one of all, none, list, got "some"'],
    ['compatibility:\n  schema1:\n    enabled: [true]\n', 'compatibility.schema1.enabled (REGISTRY_COMPATIBILITY_SCHEMA1_ENABLED): expected true or false, got a list'],
    ['catalog:\n  maxentries: 1.5\n', 'catalog.maxentries (REGISTRY_CATALOG_MAXENTRIES): expected an integer, got 1.5'],
    ['http: 5000\n', 'http (REGISTRY_HTTP): expected a mapping, got 5000'],
  ];
  for (const [yaml, expected] of cases) {
    it(expected.split(' ')[0], () => {
      const full = yaml.startsWith('storage:') ? `version: 0.1\n${yaml}` : `${BASE}${yaml}`;
      const msg = errorOf(() => parse(full));
      assert.ok(msg.includes(expected), `message:\n${msg}\nshould include:\n${expected}`);
      assert.ok(msg.startsWith('configuration "test.yml"'), msg);
    });
  }

  it('lists every problem at once', () => {
    const msg = errorOf(() => parse(`${BASE}http:\n  net: udp\nredis:\n  db: x\n`));
    assert.match(msg, /^configuration "test\.yml" has 2 errors:\n {2}http\.net .*\n {2}redis\.db /);
  });

  it('auth takes exactly one type', () => {
    const msg = errorOf(() => parse(`${BASE}auth:\n  silly: {realm: a, service: b}\n  htpasswd: {realm: a, path: p}\n`));
    assert.match(msg, /auth \(REGISTRY_AUTH\): must provide exactly one type\. Provided: silly, htpasswd/);
    assert.match(errorOf(() => parse(`${BASE}auth:\n  ldap: {}\n`)), /auth\.ldap \(REGISTRY_AUTH_LDAP\): unknown authentication type "ldap"/);
  });
});

describe('version', () => {
  it('accepts 0.1 as a number or a string', () => {
    assert.equal(parse('version: "0.1"\nstorage: inmemory\n').config.version, '0.1');
    assert.equal(parse("version: '0.1'\nstorage: inmemory\n").config.version, '0.1');
  });

  it('rejects other or missing versions like Distribution', () => {
    assert.equal(errorOf(() => parse('version: 0.2\nstorage: inmemory\n')), 'configuration "test.yml": version: unsupported version: "0.2" (expected 0.1)');
    assert.match(errorOf(() => parse('version: 0.10\nstorage: inmemory\n')), /unsupported version: "0\.10"/);
    assert.match(errorOf(() => parse('storage: inmemory\n')), /version: missing/);
    assert.match(errorOf(() => parse('')), /version: missing/);
    assert.match(errorOf(() => parse('- a\n- b\n')), /expected a mapping of configuration sections, got a list/);
  });
});
