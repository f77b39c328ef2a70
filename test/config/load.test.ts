import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, DEFAULT_CONFIG_YAML, loadConfig, parseConfig, unsupportedFeatures } from '../../src/config/index.js';
import { errorOf } from './helpers.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'wharf-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('loadConfig', () => {
  it('uses the embedded default without a file', () => {
    const { config, warnings, source } = loadConfig({ env: {} });
    assert.equal(source, 'embedded default');
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.storage.driver, { name: 'filesystem', options: { rootdirectory: resolve('data'), maxthreads: 100 } });
    assert.equal(config.http.addr, ':5000');
    assert.equal(config.storage.delete.enabled, false);
    assert.equal(config.log.level, 'info');
    assert.deepEqual(unsupportedFeatures(config), [], 'the default must start');
  });

  it('exports the default as YAML that parses to the same thing', () => {
    assert.match(DEFAULT_CONFIG_YAML, /^version: 0\.1\n/);
    assert.deepEqual(parseConfig(DEFAULT_CONFIG_YAML, {}, 'x').config, loadConfig({ env: {} }).config);
  });

  it('applies the environment to the default too', () => {
    const { config } = loadConfig({ env: { REGISTRY_STORAGE_DELETE_ENABLED: 'true', REGISTRY_HTTP_ADDR: '127.0.0.1:0' } });
    assert.equal(config.storage.delete.enabled, true);
    assert.equal(config.http.addr, '127.0.0.1:0');
  });

  it('reads a file and names it as the source', () => {
    const path = join(dir, 'config.yml');
    writeFileSync(path, 'version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: :6000\n  foo: 1\n');
    const { config, warnings, source } = loadConfig({ path, env: { REGISTRY_HTTP_ADDR: ':7000' } });
    assert.equal(source, path);
    assert.equal(config.http.addr, ':7000', 'environment wins over the file');
    assert.deepEqual(warnings, ['unknown configuration key "http.foo" (ignored)']);
  });

  it('falls back to REGISTRY_CONFIGURATION_PATH like Distribution', () => {
    const path = join(dir, 'from-env.yml');
    writeFileSync(path, 'version: 0.1\nstorage: inmemory\n');
    const { source, warnings } = loadConfig({ env: { REGISTRY_CONFIGURATION_PATH: path } });
    assert.equal(source, path);
    assert.deepEqual(warnings, []);
  });

  it('reports a missing or unreadable file in one line', () => {
    const missing = join(dir, 'nope.yml');
    assert.equal(errorOf(() => loadConfig({ path: missing, env: {} })), `cannot read configuration file "${missing}": no such file`);
    assert.equal(errorOf(() => loadConfig({ path: dir, env: {} })), `cannot read configuration file "${dir}": it is a directory`);
  });

  it('reports invalid YAML with line and column', () => {
    const path = join(dir, 'bad.yml');
    writeFileSync(path, 'version: 0.1\nstorage:\n  inmemory:\n    - a\n  b: [\n');
    const msg = errorOf(() => loadConfig({ path, env: {} }));
    assert.match(msg, new RegExp(`^configuration "${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}": invalid YAML at line \\d+, column \\d+: `));
    assert.doesNotMatch(msg, /\n/);
  });

  it('reports an unknown YAML anchor', () => {
    assert.match(errorOf(() => parseConfig('version: 0.1\nstorage: *nowhere\n', {}, 'x')), /storage: unknown YAML anchor "\*nowhere"/);
  });

  it('returns a deep-frozen configuration', () => {
    const { config } = loadConfig({ env: {} });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.storage.driver.options));
    assert.ok(Object.isFrozen(config.http.headers['X-Content-Type-Options']));
    assert.throws(() => {
      (config.http as { addr: string }).addr = ':1';
    }, TypeError);
  });

  it('throws ConfigError, an Error with the list of issues', () => {
    try {
      parseConfig('version: 0.1\nstorage: inmemory\nhttp:\n  net: x\n  relativeurls: 3\n', {}, 'c.yml');
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(err instanceof ConfigError && err instanceof Error);
      assert.equal(err.name, 'ConfigError');
      assert.equal(err.issues.length, 2);
      assert.match(err.issues[0], /^http\.net \(REGISTRY_HTTP_NET\)/);
    }
  });
});
