import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { errorOf, parse } from './helpers.js';

describe('storage', () => {
  it('needs a driver: Distribution\'s error when none is given', () => {
    assert.equal(
      errorOf(() => parse('version: 0.1\nstorage:\n  delete:\n    enabled: true\n')),
      'configuration "test.yml": storage (REGISTRY_STORAGE): no storage configuration provided',
    );
    assert.match(errorOf(() => parse('version: 0.1\nhttp:\n  addr: :1\n')), /no storage configuration provided/);
  });

  it('takes exactly one driver: Distribution\'s error when two are given', () => {
    const msg = errorOf(() => parse('version: 0.1\nstorage:\n  filesystem: {}\n  inmemory:\n  cache: {}\n'));
    assert.match(msg, /storage \(REGISTRY_STORAGE\): must provide exactly one storage type\. Also provided: inmemory/);
  });

  it('does not count delete, cache, maintenance, redirect, tag and gc as drivers', () => {
    const yaml = 'version: 0.1\nstorage:\n  inmemory:\n  delete: {enabled: true}\n  cache: {blobdescriptor: inmemory}\n' +
      '  maintenance: {readonly: {enabled: false}}\n  redirect: {disable: true}\n  tag: {concurrencylimit: 0}\n  gc: {enabled: false}\n';
    const { config } = parse(yaml);
    assert.deepEqual(config.storage.driver, { name: 'inmemory', options: {} });
    assert.equal(config.storage.delete.enabled, true);
    assert.equal(config.storage.redirect.disable, true);
  });

  it('rejects unknown drivers', () => {
    assert.match(
      errorOf(() => parse('version: 0.1\nstorage:\n  ftp:\n    host: x\n')),
      /storage\.ftp \(REGISTRY_STORAGE_FTP\): unknown storage driver "ftp" \(expected one of filesystem, inmemory, s3, azure, gcs, swift, oss\)/,
    );
  });

  it('accepts the bare driver name and an empty driver mapping', () => {
    assert.equal(parse('version: 0.1\nstorage: inmemory\n').config.storage.driver.name, 'inmemory');
    assert.equal(parse('version: 0.1\nstorage:\n  inmemory:\n').config.storage.driver.name, 'inmemory');
  });

  it('normalizes filesystem options: defaults, absolute root, thread floor', () => {
    const dflt = parse('version: 0.1\nstorage: filesystem\n').config.storage.driver;
    assert.deepEqual(dflt, { name: 'filesystem', options: { rootdirectory: '/var/lib/registry', maxthreads: 100 } });

    const { config, warnings } = parse('version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: rel/dir\n    maxthreads: 10\n');
    assert.deepEqual(config.storage.driver.options, { rootdirectory: resolve('rel/dir'), maxthreads: 25 });
    assert.deepEqual(warnings, ['storage.filesystem.maxthreads: 10 is below the minimum of 25; using 25']);
    const fromString = parse('version: 0.1\nstorage:\n  filesystem:\n    maxthreads: "50"\n').config.storage.driver;
    assert.ok(fromString.name === 'filesystem');
    assert.equal(fromString.options.maxthreads, 50);
  });

  it('reads cloud driver parameters the way their drivers do', () => {
    const yaml = 'version: 0.1\nstorage:\n  s3:\n    bucket: b\n    secure: "false"\n    chunksize: "10485760"\n    v4auth: true\n';
    const { driver } = parse(yaml).config.storage;
    assert.equal(driver.name, 's3');
    assert.deepEqual(driver.options, { bucket: 'b', secure: false, chunksize: 10485760, v4auth: true });
    const gcs = parse('version: 0.1\nstorage:\n  gcs:\n    bucket: b\n    credentials:\n      type: service_account\n      project_id: p\n');
    assert.deepEqual(gcs.config.storage.driver.options, { bucket: 'b', credentials: { type: 'service_account', project_id: 'p' } });
  });

  it('handles the cache section like Distribution', () => {
    const old = parse('version: 0.1\nstorage:\n  inmemory:\n  cache:\n    layerinfo: inmemory\n');
    assert.equal(old.config.storage.cache.blobdescriptor, 'inmemory');
    assert.deepEqual(old.warnings, ['"storage.cache.layerinfo" is deprecated; use "storage.cache.blobdescriptor" instead']);
    const unknown = parse('version: 0.1\nstorage:\n  inmemory:\n  cache:\n    blobdescriptor: memcached\n');
    assert.equal(unknown.config.storage.cache.blobdescriptor, undefined);
    assert.match(unknown.warnings[0], /unknown cache type "memcached".*caching is disabled/);
  });

  it('parses maintenance durations', () => {
    const yaml = 'version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      enabled: true\n      age: 2h\n      interval: 30m\n      dryrun: true\n';
    assert.deepEqual(parse(yaml).config.storage.maintenance.uploadpurging, { enabled: true, age: 7_200_000, interval: 1_800_000, dryrun: true });
  });
});
