// The `redirect` storage middleware: URLs as Distribution builds them, configuration errors that
// name the key, a wrapped driver that still passes the driver conformance suite (its redirect URLs
// served by a plain file server over the rootdirectory), and blob GETs answering 307 through a
// registry started from a configuration file's text.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { settingsFromConfig } from '../../src/cli/serve.js';
import { startRegistry, type StartedRegistry } from '../../src/cli/start.js';
import { ConfigError, unsupportedFeatures } from '../../src/config/index.js';
import { InvalidPathError } from '../../src/storage/driver.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { InMemoryDriver } from '../../src/storage/inmemory.js';
import { applyStorageMiddleware } from '../../src/storage/middleware/index.js';
import { MiddlewareOptions } from '../../src/storage/middleware/options.js';
import { parseRedirectOptions, redirectURLFor, RedirectMiddleware } from '../../src/storage/middleware/redirect.js';
import { parse } from '../config/helpers.js';
import { runDriverConformance } from './driver-conformance.js';
import { startStaticServer, type StaticServer } from './static-server.js';

const url = (baseurl: string, path: string) => redirectURLFor(parseRedirectOptions(new MiddlewareOptions('middleware.storage[0]', { baseurl })), path);

async function errorOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('redirect middleware: URLs', () => {
  it('joins scheme, host and the storage path as Distribution does', () => {
    // Distribution's own cases (registry/storage/driver/middleware/redirect/middleware_test.go).
    assert.equal(url('https://example.com:5443', '/rick/data'), 'https://example.com:5443/rick/data');
    assert.equal(url('http://example.com', 'morty/data'), 'http://example.com/morty/data');
    for (const base of ['https://example.com/path', 'https://example.com/path/']) {
      assert.equal(url(base, 'morty/data'), 'https://example.com/path/morty/data', base);
      assert.equal(url(base, '/morty/data'), 'https://example.com/path/morty/data', base);
    }
    const blob = '/docker/registry/v2/blobs/sha256/ab/ab12/data';
    assert.equal(url('https://cdn.example.com/', blob), `https://cdn.example.com${blob}`);
    assert.equal(url('https://cdn.example.com//a//b/', blob), `https://cdn.example.com/a/b${blob}`, 'path.Join cleans');
  });

  it('keeps the host as written, lower-cases the scheme, drops user, query and fragment, escapes the path like Go', () => {
    assert.equal(url('HTTPS://CDN.Example.com:443/x', '/d'), 'https://CDN.Example.com:443/x/d');
    assert.equal(url('https://user:pw@cdn.example.com/?a=b#f', '/d'), 'https://cdn.example.com/d');
    assert.equal(url('https://[::1]:8443', '/d'), 'https://[::1]:8443/d');
    assert.equal(url('https://cdn.example.com/a%20b/c$d,e;f=g@h:i', '/d'), 'https://cdn.example.com/a%20b/c$d,e;f=g@h:i/d');
    assert.equal(url('https://cdn.example.com/%3F%25', '/d'), 'https://cdn.example.com/%3F%25/d');
  });

  it('refuses a missing or bad baseurl, naming the key', async () => {
    const err = (options: Record<string, unknown>) => errorOf(() => parseRedirectOptions(new MiddlewareOptions('middleware.storage[2]', options)));
    assert.equal(await err({}), 'middleware.storage[2].options.baseurl: required, an absolute http(s) URL such as "https://cdn.example.com:5443"');
    assert.match(await err({ baseurl: 5 }), /^middleware\.storage\[2\]\.options\.baseurl: expected an absolute http\(s\) URL .*, got 5$/);
    assert.match(await err({ baseurl: 'example.com' }), /^middleware\.storage\[2\]\.options\.baseurl: expected an absolute http\(s\) URL/);
    assert.match(await err({ baseurl: 'ftp://example.com' }), /baseurl: expected an http or https URL, got scheme "ftp"$/);
    assert.match(await err({ baseurl: 'localhost:5000' }), /baseurl: expected an http or https URL, got scheme "localhost"$/);
    assert.match(await err({ baseurl: 'https://cdn.example.com/%zz' }), /baseurl: the path of .* has a bad %-escape$/);
  });
});

describe('redirect middleware: the wrapped driver', () => {
  it('checks paths, delegates everything else, and is left out when storage.redirect.disable is set', async () => {
    const inner = new InMemoryDriver();
    const { driver } = await applyStorageMiddleware(inner, [{ index: 0, name: 'redirect', options: { baseurl: 'https://cdn.example.com' } }], { redirect: true });
    assert.ok(driver instanceof RedirectMiddleware);
    assert.equal(driver.name, 'inmemory');
    await driver.putContent('/a/b', Buffer.from('x'));
    assert.deepEqual(await inner.getContent('/a/b'), Buffer.from('x'));
    assert.equal(await driver.redirectURL('GET', '/a/b'), 'https://cdn.example.com/a/b');
    await assert.rejects(driver.redirectURL('GET', '/a/../b'), InvalidPathError);
    assert.equal(await inner.redirectURL('GET', '/a/b'), null, 'the wrapped driver itself does not redirect');

    const off = await applyStorageMiddleware(inner, [{ index: 0, name: 'redirect', options: { baseurl: 'https://cdn.example.com' } }], { redirect: false });
    assert.equal(off.driver, inner);
    // Still checked: a bad entry stops start-up whether or not redirects are on, as in Distribution.
    await errorOf(() => applyStorageMiddleware(inner, [{ index: 0, name: 'redirect', options: {} }], { redirect: false }));
  });

  it('refuses an unknown storage middleware name, also at the configuration check', async () => {
    const message = await errorOf(() => applyStorageMiddleware(new InMemoryDriver(), [{ index: 1, name: 'rewrite', options: {} }], { redirect: true }));
    assert.match(message, /^middleware\.storage\[1\]\.name: unknown middleware "rewrite" \(Distribution 3's rewrite is not supported yet/);
    const config = (storage: string) => parse(`version: 0.1\nstorage:\n  inmemory:\nmiddleware:\n  storage:\n${storage}`).config;
    assert.deepEqual(unsupportedFeatures(config('    - name: redirect\n      options: {baseurl: "https://c"}\n    - name: cloudfront\n')), []);
    assert.deepEqual(unsupportedFeatures(config('    - name: foo\n    - name: bar\n      disabled: true\n')), [
      'middleware.storage (foo): unknown middleware "foo"; the storage middleware are redirect and cloudfront',
    ]);
  });
});

// The whole driver contract through the wrapper; its redirectURL test fetches what the URLs name.
let conformanceServer: StaticServer | undefined;
runDriverConformance(
  'filesystem + redirect middleware',
  async () => {
    const base = await mkdtemp(join(tmpdir(), 'wharf-redirect-'));
    conformanceServer = await startStaticServer(base);
    const { driver } = await applyStorageMiddleware(new FilesystemDriver({ rootdirectory: base }), [{ index: 0, name: 'redirect', options: { baseurl: conformanceServer.url } }], { redirect: true });
    return {
      driver,
      cleanup: async () => {
        await conformanceServer?.close();
        await rm(base, { recursive: true, force: true });
      },
    };
  },
  { largeFileBytes: 4 * 1024 * 1024 },
);

describe('redirect middleware in a registry started from configuration', () => {
  let dir: string;
  let cdn: StaticServer;
  let registry: StartedRegistry;
  const blob = randomBytes(100_000);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-redirect-reg-'));
    cdn = await startStaticServer(dir, '/cdn');
    const yaml = [
      'version: 0.1',
      'log: {level: error}',
      `storage:\n  filesystem:\n    rootdirectory: ${dir}`,
      'http: {addr: "127.0.0.1:0"}',
      'middleware:',
      '  storage:',
      '    - name: redirect',
      '      disabled: true',
      '      options: {baseurl: "http://disabled.invalid"}',
      '    - name: redirect',
      `      options: {baseurl: "${cdn.url}/cdn"}`,
    ].join('\n');
    const settings = settingsFromConfig(parse(yaml).config);
    assert.deepEqual(settings.storageMiddleware?.map((m) => m.index), [1], 'the disabled entry is skipped');
    registry = await startRegistry(settings);
    const post = await fetch(`${registry.url}/v2/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob });
    assert.equal(post.status, 201);
  });

  after(async () => {
    await registry?.close();
    await cdn?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers blob GETs with 307 to baseurl + the storage path; the file server has the bytes', async () => {
    const res = await fetch(`${registry.url}/v2/app/blobs/${digest}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const hex = digest.slice('sha256:'.length);
    assert.equal(res.headers.get('location'), `${cdn.url}/cdn/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`);
    const followed = await fetch(`${registry.url}/v2/app/blobs/${digest}`);
    assert.deepEqual(Buffer.from(await followed.arrayBuffer()), blob);
    assert.equal(cdn.requests.filter((r) => r.status === 200 && r.bytes === blob.length).length, 1);
  });

  it('serves HEAD itself, and refuses a blob the repository does not link before redirecting', async () => {
    const head = await fetch(`${registry.url}/v2/app/blobs/${digest}`, { method: 'HEAD', redirect: 'manual' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(blob.length));
    const other = await fetch(`${registry.url}/v2/other/blobs/${digest}`, { redirect: 'manual' });
    assert.equal(other.status, 404);
  });
});
