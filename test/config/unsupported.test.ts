import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { unsupportedFeatures } from '../../src/config/index.js';
import { BASE, SAMPLE_CONFIG_YAML, parse } from './helpers.js';

const unsupported = (yaml: string, env: Record<string, string> = {}) => unsupportedFeatures(parse(yaml, env).config);
const REPLACED =
  'Wharf replaces Bugsnag and New Relic reporting with OpenTelemetry tracing: remove this key and set OTEL_EXPORTER_OTLP_ENDPOINT ' +
  '(an OTLP/HTTP collector, e.g. http://collector:4318) or OTEL_TRACES_EXPORTER=console; OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES ' +
  'and OTEL_TRACES_SAMPLER refine it (README: Tracing)';

describe('unsupportedFeatures', () => {
  it('is empty for implemented features', () => {
    const yaml = 'version: 0.1\nlog:\n  level: debug\n  formatter: json\n  fields: {a: b}\n  accesslog: {disabled: true}\n' +
      'storage:\n  filesystem:\n    rootdirectory: /tmp/r\n    maxthreads: 50\n  delete: {enabled: true}\n  redirect: {disable: true}\n' +
      '  cache: {blobdescriptor: inmemory}\n  maintenance:\n    uploadpurging: {enabled: true, age: 168h, interval: 24h, dryrun: false}\n' +
      'http:\n  addr: :5000\n  net: tcp\n  prefix: /r/\n  host: https://r.example.com\n  relativeurls: true\n  secret: s\n  headers: {X-A: [b]}\n  http2: {disabled: true}\n' +
      'catalog: {maxentries: 10}\nvalidation: {disabled: true}\n' +
      'notifications:\n  events: {includereferences: true}\n  endpoints:\n    - {name: off, url: http://127.0.0.1:9/, disabled: true}\n';
    assert.deepEqual(unsupported(yaml), []);
    const purgingOff = 'version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging: {enabled: false, age: 1h}\n';
    assert.deepEqual(unsupported(purgingOff), []);
  });

  it('names every configured but unimplemented feature of the full sample', () => {
    assert.deepEqual(unsupported(SAMPLE_CONFIG_YAML), [
      'middleware.registry (ARegistryMiddleware): unknown middleware "ARegistryMiddleware"; Distribution 2.8 has no built-in registry middleware',
      'middleware.repository (ARepositoryMiddleware): unknown middleware "ARepositoryMiddleware"; Distribution 2.8 has no built-in repository middleware',
      `reporting.bugsnag: ${REPLACED}`,
      `reporting.newrelic: ${REPLACED}`,
      'compatibility.schema1: not supported yet by this version of Wharf',
    ]);
  });

  it('reports cloud storage drivers, whether from the file or the environment; auth is implemented', () => {
    assert.deepEqual(unsupported('version: 0.1\nstorage:\n  s3:\n    bucket: b\n'), [], 'the s3 driver is implemented');
    assert.deepEqual(unsupported('version: 0.1\nstorage:\n  azure:\n    accountname: a\n    container: c\n'), [], 'the azure driver is implemented');
    assert.deepEqual(unsupported(BASE, { REGISTRY_STORAGE: 'gcs' }), [], 'the gcs driver is implemented');
    assert.deepEqual(unsupported(BASE, { REGISTRY_AUTH: 'htpasswd', REGISTRY_AUTH_HTPASSWD_REALM: 'r', REGISTRY_AUTH_HTPASSWD_PATH: '/p' }), []);
    assert.deepEqual(unsupported(`${BASE}auth:\n  silly: {realm: r, service: s}\n`), []);
    assert.deepEqual(unsupported(`${BASE}auth:\n  token: {realm: r, service: s, issuer: i, rootcertbundle: /b, autoredirect: true}\n`), []);
    assert.deepEqual(unsupported(`${BASE}auth: none\n`), []);
  });

  it('online gc, unix sockets, drain timeouts, tag concurrency, index validation and mail hooks are implemented', () => {
    const yaml = 'version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging: {enabled: true, age: 1h, interval: 24h, dryrun: false}\n' +
      '    readonly: {enabled: true}\n  gc: {enabled: true}\nhttp:\n  net: unix\n  addr: /tmp/r.sock\n  h2c: {enabled: true}\n' +
      'log:\n  hooks:\n    - type: mail\n      levels: [panic]\n';
    assert.deepEqual(unsupported(yaml), []);
    const more = 'version: 0.1\nstorage:\n  inmemory:\n  tag: {concurrencylimit: 4}\nhttp:\n  draintimeout: 30s\n' +
      'validation:\n  manifests:\n    indexes:\n      platforms: list\n      platformlist: [{os: linux, architecture: amd64}]\n';
    assert.deepEqual(unsupported(more), []);
  });

  it('ignores URL validation rules when validation is disabled', () => {
    const yaml = `${BASE}validation:\n  disabled: true\n  manifests:\n    urls:\n      allow: ['^https://']\n`;
    assert.deepEqual(unsupported(yaml), []);
  });
});
