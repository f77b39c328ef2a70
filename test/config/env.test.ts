import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, errorOf, parse } from './helpers.js';

const FS = 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /srv/registry\n';

describe('environment overrides', () => {
  it('set scalars, parsed as YAML into the field type', () => {
    const { config, warnings } = parse(BASE, {
      REGISTRY_HTTP_ADDR: '127.0.0.1:6000',
      REGISTRY_HTTP_RELATIVEURLS: 'true',
      REGISTRY_CATALOG_MAXENTRIES: '50',
      REGISTRY_HTTP_DRAINTIMEOUT: '1m30s',
      REGISTRY_HTTP_SECRET: '0123',
      REGISTRY_LOG_LEVEL: 'DEBUG',
    });
    assert.deepEqual(warnings, []);
    assert.equal(config.http.addr, '127.0.0.1:6000');
    assert.equal(config.http.relativeurls, true);
    assert.equal(config.catalog.maxentries, 50);
    assert.equal(config.http.draintimeout, 90_000);
    assert.equal(config.http.secret, '0123', 'string fields keep the text');
    assert.equal(config.log.level, 'debug');
  });

  it('set nested keys and win over the file', () => {
    const yaml = `${FS}  delete:\n    enabled: false\nlog:\n  accesslog:\n    disabled: false\n`;
    const { config } = parse(yaml, {
      REGISTRY_STORAGE_DELETE_ENABLED: 'true',
      REGISTRY_LOG_ACCESSLOG_DISABLED: 'true',
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/elsewhere',
      REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED: 'false',
    });
    assert.equal(config.storage.delete.enabled, true);
    assert.equal(config.log.accesslog.disabled, true);
    assert.deepEqual(config.storage.driver, { name: 'filesystem', options: { rootdirectory: '/elsewhere', maxthreads: 100 } });
    assert.equal(config.storage.maintenance.uploadpurging.enabled, false);
  });

  it('replace a whole section with a name or a YAML mapping', () => {
    const yaml = `${FS}  delete:\n    enabled: true\n`;
    const byName = parse(yaml, { REGISTRY_STORAGE: 'inmemory' }).config;
    assert.deepEqual(byName.storage.driver, { name: 'inmemory', options: {} });
    assert.equal(byName.storage.delete.enabled, false, 'the file storage section is gone');

    const byYaml = parse(yaml, { REGISTRY_STORAGE: '{s3: {bucket: b, region: r}, delete: {enabled: true}}' }).config;
    assert.equal(byYaml.storage.driver.name, 's3');
    assert.deepEqual(byYaml.storage.driver.options, { bucket: 'b', region: 'r' });
    assert.equal(byYaml.storage.delete.enabled, true);

    const tls = parse(BASE, { REGISTRY_HTTP_TLS: 'certificate: /c.pem\nkey: /k.pem' }).config.http.tls;
    assert.equal(tls.certificate, '/c.pem');
    assert.equal(tls.key, '/k.pem');
  });

  it('apply in lexical order: a section first, then keys inside it', () => {
    const { config } = parse(FS, { REGISTRY_STORAGE_DELETE_ENABLED: 'true', REGISTRY_STORAGE: 'inmemory' });
    assert.equal(config.storage.driver.name, 'inmemory');
    assert.equal(config.storage.delete.enabled, true);
  });

  it('create keys of storage drivers and free-form maps', () => {
    const { config } = parse('version: 0.1\nstorage: s3\n', {
      REGISTRY_STORAGE_S3_BUCKET: 'mybucket',
      REGISTRY_STORAGE_S3_SECURE: 'false',
      REGISTRY_STORAGE_S3_CHUNKSIZE: '5242880',
      REGISTRY_LOG_FIELDS_ENVIRONMENT: 'staging',
      'REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS': '[DENY]',
    });
    assert.deepEqual(config.storage.driver, {
      name: 's3', options: { bucket: 'mybucket', secure: false, chunksize: 5242880 },
    });
    assert.deepEqual(config.log.fields, { environment: 'staging' });
    assert.deepEqual(config.http.headers, { 'x-frame-options': ['DENY'] });
  });

  it('replace an existing map key whatever its case', () => {
    const yaml = `${BASE}log:\n  fields:\n    Service: a\n`;
    assert.deepEqual(parse(yaml, { REGISTRY_LOG_FIELDS_SERVICE: 'b' }).config.log.fields, { Service: 'b' });
  });

  it('reach keys that contain underscores', () => {
    const { config } = parse('version: 0.1\nstorage:\n  azure:\n    accountname: a\n', {
      REGISTRY_STORAGE_AZURE_MAX_RETRIES: '7',
      REGISTRY_STORAGE_AZURE_RETRY_DELAY: '1s',
    });
    assert.deepEqual(config.storage.driver.options, { accountname: 'a', max_retries: 7, retry_delay: '1s' });
  });

  it('set lists as YAML or by index', () => {
    const whole = parse(BASE, { REGISTRY_HTTP_TLS_CLIENTCAS: '[/a.pem, /b.pem]' }).config;
    assert.deepEqual(whole.http.tls.clientcas, ['/a.pem', '/b.pem']);
    const yaml = `${BASE}http:\n  tls:\n    clientcas: [/a.pem]\n`;
    const indexed = parse(yaml, { REGISTRY_HTTP_TLS_CLIENTCAS_0: '/x.pem', REGISTRY_HTTP_TLS_CLIENTCAS_1: '/y.pem' }).config;
    assert.deepEqual(indexed.http.tls.clientcas, ['/x.pem', '/y.pem']);
    const endpoint = parse(BASE, { REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: 'http://127.0.0.1:1/e' }).config;
    assert.equal(endpoint.notifications.endpoints[0].url, 'http://127.0.0.1:1/e');
  });

  it('accept Distribution\'s Go field names where they differ from the YAML key', () => {
    const { config } = parse(BASE, {
      REGISTRY_HEALTH_FILECHECKERS: '[{file: /tmp/x}]',
      REGISTRY_NOTIFICATIONS_EVENTCONFIG_INCLUDEREFERENCES: 'true',
      REGISTRY_COMPATIBILITY_SCHEMA1_TRUSTKEY: '/key.json',
    });
    assert.equal(config.health.file[0].file, '/tmp/x');
    assert.equal(config.notifications.events.includereferences, true);
    assert.equal(config.compatibility.schema1.signingkeyfile, '/key.json');
  });

  it('empty values fall back to the default', () => {
    assert.equal(parse(`${BASE}http:\n  addr: :7000\n`, { REGISTRY_HTTP_ADDR: '' }).config.http.addr, ':5000');
  });

  it('warn about variables that name no key, and ignore non-configuration ones', () => {
    const { warnings } = parse(BASE, {
      REGISTRY_HTTP_FOO: 'x',
      REGISTRY_STORGE_DELETE_ENABLED: 'true',
      REGISTRY_HTTP_ADDR_PORT: '1',
      REGISTRY_VERSION: '0.2',
      REGISTRY_CONFIGURATION_PATH: '/etc/docker/registry/config.yml',
      REGISTRY_PORT: 'tcp://10.0.0.1:5000',
      REGISTRY_PORT_5000_TCP_ADDR: '10.0.0.1',
      REGISTRY_SERVICE_HOST: '10.0.0.1',
      registry_http_addr: 'lowercase is not read',
      HOME: '/root',
    });
    assert.deepEqual(warnings, [
      'environment variable REGISTRY_HTTP_ADDR_PORT goes below http.addr, which takes a single value (ignored)',
      'environment variable REGISTRY_HTTP_FOO does not match any configuration key (ignored)',
      'environment variable REGISTRY_STORGE_DELETE_ENABLED does not match any configuration key (ignored)',
      'environment variable REGISTRY_VERSION cannot override the configuration version (ignored)',
    ]);
  });

  it('warn about unknown keys inside a YAML value', () => {
    const { warnings } = parse(BASE, { REGISTRY_HTTP_TLS: '{certificate: /c, bogus: 1}' });
    assert.deepEqual(warnings, ['unknown configuration key "http.tls.bogus" in REGISTRY_HTTP_TLS (ignored)']);
  });

  it('report bad values with the variable name', () => {
    assert.match(
      errorOf(() => parse(FS, { REGISTRY_STORAGE_FILESYSTEM_MAXTHREADS: 'abc' })),
      /storage\.filesystem\.maxthreads \(REGISTRY_STORAGE_FILESYSTEM_MAXTHREADS\): expected an integer ≥ 25, got "abc"/,
    );
    assert.match(
      errorOf(() => parse(BASE, { REGISTRY_HTTP_RELATIVEURLS: 'sure' })),
      /http\.relativeurls \(REGISTRY_HTTP_RELATIVEURLS\): expected true or false, got "sure"/,
    );
    assert.match(
      errorOf(() => parse(BASE, { REGISTRY_HTTP_TLS_CLIENTCAS: '[unclosed' })),
      /http\.tls\.clientcas \(REGISTRY_HTTP_TLS_CLIENTCAS\): the value is not valid YAML/,
    );
  });

  it('keep unparsable YAML as text for string keys', () => {
    assert.equal(parse(BASE, { REGISTRY_HTTP_SECRET: '*not-an-alias' }).config.http.secret, '*not-an-alias');
  });

  it('can add a second storage driver, which is an error as in Distribution', () => {
    assert.match(
      errorOf(() => parse(FS, { REGISTRY_STORAGE_S3_BUCKET: 'b' })),
      /storage \(REGISTRY_STORAGE\): must provide exactly one storage type\. Also provided: s3/,
    );
  });
});
