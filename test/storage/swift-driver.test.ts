/** The swift driver on Ceph RGW's Swift API: what the shared suite cannot see (options, layout, restarts, temp URLs, v1 auth). */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { SwiftDriver } from '../../src/storage/swift.js';
import { DEFAULT_CHUNK_SIZE, parseSwiftOptions } from '../../src/storage/swift-options.js';
import { unsupportedFeatures } from '../../src/config/unsupported.js';
import { parse } from '../config/helpers.js';
import { MiB, readAll, sha } from './helpers.js';
import { startRgwSwift, type RgwSwift } from './rgw-swift.js';

const SEGMENT = /^reg\/segments\/[0-9a-f]{3}\/[0-9a-f]{37}\/\d{16}$/;

describe('swift options (Distribution 2.8 keys)', () => {
  const base = { authurl: 'https://keystone.example/v3', username: 'u', password: 'p', container: 'c' };

  it('reads every key, with Distribution defaults', () => {
    const all = parseSwiftOptions({
      ...base,
      authversion: '3',
      tenant: 'proj',
      tenantid: 12345,
      domain: 'users',
      domainid: 'd-1',
      tenantdomain: 'projects',
      tenantdomainid: 'd-2',
      trustid: 't-1',
      region: 'RegionTwo',
      endpointtype: 'Internal',
      insecureskipverify: 'true',
      chunksize: String(5 * MiB),
      prefix: '/reg',
      secretkey: 'k',
      accesskey: 'a',
      tempurlcontainerkey: true,
      tempurlmethods: 'get, HEAD',
    });
    assert.deepEqual(all, {
      authURL: 'https://keystone.example/v3',
      authVersion: 3,
      username: 'u',
      password: 'p',
      container: 'c',
      tenant: 'proj',
      tenantId: '12345',
      domain: 'users',
      domainId: 'd-1',
      tenantDomain: 'projects',
      tenantDomainId: 'd-2',
      trustId: 't-1',
      region: 'RegionTwo',
      endpointType: 'internal',
      insecureSkipVerify: true,
      chunkSize: 5 * MiB,
      prefix: '/reg',
      secretKey: 'k',
      accessKey: 'a',
      tempURLContainerKey: true,
      tempURLMethods: ['GET', 'HEAD'],
    });
    const defaults = parseSwiftOptions(base);
    assert.equal(defaults.chunkSize, DEFAULT_CHUNK_SIZE);
    assert.equal(defaults.chunkSize, 20 * MiB);
    assert.equal(defaults.prefix, '');
    assert.equal(defaults.insecureSkipVerify, false);
    assert.deepEqual(defaults.tempURLMethods, []);
    assert.deepEqual(parseSwiftOptions({ ...base, tempurlmethods: ['PUT', 'get'] }).tempURLMethods, ['PUT', 'GET']);
  });

  it('tells the auth version from authurl as Distribution does, or from authversion', () => {
    const v = (authurl: string, extra: Record<string, unknown> = {}) => parseSwiftOptions({ ...base, authurl, ...extra }).authVersion;
    assert.equal(v('http://127.0.0.1:7480/auth/v1.0'), 1);
    assert.equal(v('https://id.example/v2.0'), 2);
    assert.equal(v('https://id.example/v3'), 3);
    assert.equal(v('https://id.example/identity', { authversion: 2 }), 2);
    assert.equal(v('https://id.example/v3', { authversion: 0 }), 3);
  });

  it('errors name the key and what was expected', () => {
    const err = (o: Record<string, unknown>) => {
      try {
        parseSwiftOptions(o);
      } catch (e) {
        return (e as Error).message;
      }
      return assert.fail(`accepted ${JSON.stringify(o)}`);
    };
    for (const key of ['username', 'password', 'authurl', 'container']) {
      assert.equal(err({ ...base, [key]: undefined }), `storage.swift: no ${key} parameter provided`);
    }
    assert.match(err({ ...base, chunksize: 1024 }), /^storage\.swift: the chunksize 1024 parameter should be a number that is larger than or equal to 1048576$/);
    assert.match(err({ ...base, chunksize: '20MB' }), /^storage\.swift: chunksize must be an integer, got "20MB"$/);
    assert.match(err({ ...base, chunksize: 6 * 1024 * MiB }), /chunksize .* at most 5368709120/);
    assert.match(err({ ...base, authversion: 4 }), /^storage\.swift: authversion must be 1, 2 or 3, got 4$/);
    assert.match(err({ ...base, authurl: 'https://id.example/identity' }), /cannot tell the auth version from authurl .*: set authversion/);
    assert.match(err({ ...base, authurl: 'ftp://x/v1' }), /authurl must be an http or https URL/);
    assert.match(err({ ...base, endpointtype: 'private' }), /endpointtype must be one of public, internal, admin, got private/);
    assert.match(err({ ...base, tempurlmethods: ['GET', 'PATCH'] }), /tempurlmethods: "PATCH" is not one of GET, HEAD, PUT, POST, DELETE/);
    assert.match(err({ ...base, insecureskipverify: 'maybe' }), /insecureskipverify must be true or false/);
    assert.match(err({ ...base, tempurlcontainerkey: 'yes please' }), /tempurlcontainerkey must be true or false/);
    assert.match(err({ ...base, container: 'a/b' }), /container "a\/b" is not a Swift container name/);
    assert.match(err({ ...base, region: { a: 1 } }), /region must be a string/);
  });

  it('warns about keys that do nothing', () => {
    const warnings: string[] = [];
    parseSwiftOptions({ ...base, authurl: 'http://h/auth/v1.0', tenant: 't', region: 'r', rootdirectory: '/x' }, (m) => warnings.push(m));
    assert.deepEqual(warnings, [
      'storage.swift: tenant, region are not used with v1 auth (authurl http://h/auth/v1.0)',
      'storage.swift.rootdirectory is not used (Distribution 2.8 ignores it too): set prefix',
    ]);
  });

  it('a configuration with storage.swift loads (numeric tenant ids, env overrides) and is no longer refused', () => {
    const yaml = 'version: 0.1\nstorage:\n  swift:\n    authurl: https://id.example/v2.0\n    username: u\n    password: p\n    container: c\n    tenantid: 4711\n';
    const { config } = parse(yaml, { REGISTRY_STORAGE_SWIFT_CHUNKSIZE: '2097152', REGISTRY_STORAGE_SWIFT_REGION: 'RegionTwo' });
    assert.equal(config.storage.driver.name, 'swift');
    const settings = parseSwiftOptions(config.storage.driver.options as Record<string, unknown>);
    assert.equal(settings.tenantId, '4711');
    assert.equal(settings.chunkSize, 2 * MiB);
    assert.equal(settings.region, 'RegionTwo');
    assert.deepEqual(unsupportedFeatures(config).filter((m) => m.startsWith('storage.swift')), []);
  });
});

describe('swift driver on Ceph RGW', () => {
  let rgw: RgwSwift;
  let container: string;
  const make = (extra: Record<string, unknown> = {}, redirect = true) =>
    SwiftDriver.connected(rgw.options(container, { prefix: '/reg', chunksize: MiB, ...extra }), { redirect });
  const names = async (prefix = '') => (await rgw.objects(container, prefix)).map((o) => o.name);

  before(async () => {
    rgw = await startRgwSwift();
    container = rgw.containerName('specifics');
  });

  after(async () => {
    const left = await rgw.objects(container);
    await rgw.removeContainer(container);
    assert.deepEqual(left, [], 'every test removed its objects and segments');
  });

  it('creates a missing container at start-up, as Distribution does; bad v1 credentials stop start-up naming authurl', async () => {
    const head = await rgw.request('HEAD', container);
    if (head.status === 204) await rgw.removeContainer(container);
    await make();
    assert.equal((await rgw.request('HEAD', container)).status, 204);
    await assert.rejects(
      SwiftDriver.connected(rgw.options(container, { password: 'wrong' })),
      /^Error: storage\.swift: authentication at authurl http:\/\/127\.0\.0\.1:\d+\/auth\/v1\.0 failed: 40[13]/,
    );
  });

  it("names objects as Distribution's swift driver: <prefix>/files/<path>, writers as DLO manifests over <prefix>/segments/<3>/<37>/<16 digits>", async () => {
    const driver = await make();
    await driver.putContent('/docker/registry/v2/repositories/a/_layers/sha256/ab/link', Buffer.from('sha256:ab'));
    assert.deepEqual(await names('reg/files/'), ['reg/files/docker/registry/v2/repositories/a/_layers/sha256/ab/link']);

    const content = randomBytes(2 * MiB + 100);
    const w = await driver.writer('/docker/registry/v2/blobs/sha256/cd/cdef/data', false);
    await w.write(content);
    await w.commit();
    const manifest = await rgw.request('HEAD', `${container}/reg/files/docker/registry/v2/blobs/sha256/cd/cdef/data`);
    const pointer = manifest.headers.get('x-object-manifest') ?? '';
    assert.ok(pointer.startsWith(`${container}/reg/segments/`), `X-Object-Manifest: ${pointer}`);
    const segments = await rgw.objects(container, pointer.slice(container.length + 1));
    assert.deepEqual(
      segments.map((s) => [s.name.slice(-16), s.bytes]),
      [['0000000000000001', MiB], ['0000000000000002', MiB], ['0000000000000003', 100]],
      'segments of chunksize bytes, numbered from 1',
    );
    for (const s of segments) assert.match(s.name, SEGMENT);
    assert.equal(manifest.headers.get('content-length'), String(content.length));
    assert.ok((await driver.getContent('/docker/registry/v2/blobs/sha256/cd/cdef/data')).equals(content));

    // No prefix: files/... at the top of the container.
    const bare = await make({ prefix: '' });
    await bare.putContent('/docker/x', Buffer.from('x'));
    assert.deepEqual(await names('files/'), ['files/docker/x']);
    await bare.delete('/docker');
    await driver.delete('/docker');
    assert.deepEqual(await names(), [], 'deleting the tree took the segments along');
  });

  it('serves a dynamic large object written by another program (Distribution), continues it, moves and deletes it', async () => {
    // Distribution's shape, made with raw Swift requests: two segments and a manifest.
    const seg = `reg/segments/abc/${'d'.repeat(37)}`;
    const parts = [randomBytes(MiB), randomBytes(12_345)];
    for (const [i, p] of parts.entries()) {
      assert.equal((await rgw.request('PUT', `${container}/${seg}/${String(i + 1).padStart(16, '0')}`, { body: p })).status, 201);
    }
    const path = '/docker/registry/v2/repositories/r/_uploads/u1/data';
    const put = await rgw.request('PUT', `${container}/reg/files${path}`, { headers: { 'X-Object-Manifest': `${container}/${seg}` }, body: '' });
    assert.equal(put.status, 201);
    const driver = await make();
    const all = Buffer.concat(parts);
    assert.equal((await driver.stat(path)).size, all.length);
    assert.ok((await readAll(await driver.reader(path, MiB - 5, 10))).equals(all.subarray(MiB - 5, MiB + 5)), 'a range across segments');
    const walked: Array<[string, number]> = [];
    await driver.walk('/docker/registry/v2/repositories/r', (info) => {
      if (!info.isDir) walked.push([info.path, info.size]);
    });
    assert.deepEqual(walked, [[path, all.length]], 'walk reports the manifest by the size of its segments');

    const w = await driver.writer(path, true);
    assert.equal(w.size, all.length);
    const more = randomBytes(100);
    await w.write(more);
    await w.commit();
    assert.deepEqual((await names(seg)).map((n) => n.slice(-16)), ['0000000000000001', '0000000000000002', '0000000000000003']);
    const blob = '/docker/registry/v2/blobs/sha256/ee/eeee/data';
    await driver.move(path, blob);
    assert.ok((await driver.getContent(blob)).equals(Buffer.concat([all, more])));
    const moved = await rgw.request('HEAD', `${container}/reg/files${blob}`);
    assert.equal(moved.headers.get('x-object-manifest'), `${container}/${seg}`, 'a move writes a new manifest over the same segments');
    assert.equal((await names(seg)).length, 3, 'no segment was copied or lost');
    await driver.delete('/docker');
    assert.deepEqual(await names(), []);
  });

  it('an upload resumes on another driver instance, also after a process that died mid-segment', async () => {
    const path = '/docker/registry/v2/repositories/r/_uploads/u2/data';
    const options = rgw.options(container, { prefix: '/reg', chunksize: MiB });
    // A separate process writes 1.5 MiB (one whole segment, half of the next in flight) and is killed.
    const module = resolve(import.meta.dirname, '../../src/storage/swift.js');
    const script = `
      const { SwiftDriver } = await import(${JSON.stringify(module)});
      const d = await SwiftDriver.connected(${JSON.stringify(options)});
      const w = await d.writer(${JSON.stringify(path)}, true);
      await w.write(Buffer.alloc(${1.5 * MiB}, 7));
      process.stdout.write('written\\n');
      setInterval(() => undefined, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((ok, ko) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('written') && ok());
      child.on('exit', (code) => ko(new Error(`the writer process exited (${code}) before writing`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const second = await make();
    assert.equal((await second.stat(path)).size, MiB, 'the whole segment counts; the one cut off does not exist');
    const w2 = await second.writer(path, true);
    assert.equal(w2.size, MiB);
    const tail = randomBytes(MiB + 3);
    await w2.write(tail);
    await w2.close();
    const third = await make();
    const w3 = await third.writer(path, true);
    assert.equal(w3.size, 2 * MiB + 3);
    await w3.write(Buffer.from('end'));
    await w3.commit();
    const expected = Buffer.concat([Buffer.alloc(MiB, 7), tail, Buffer.from('end')]);
    assert.equal(sha(await (await make()).getContent(path)), sha(expected));
    await third.delete('/docker');
    assert.deepEqual(await names(), []);
  });

  it('deleting a manifest that points outside the segment directories deletes only the manifest', async () => {
    const driver = await make();
    await driver.putContent('/keep/file', Buffer.from('keep'));
    const evil = await rgw.request('PUT', `${container}/reg/files/evil`, { headers: { 'X-Object-Manifest': `${container}/reg/files/keep` }, body: '' });
    assert.equal(evil.status, 201);
    assert.equal((await driver.getContent('/evil')).toString(), 'keep', 'it reads as the objects it names');
    await driver.delete('/evil');
    assert.equal((await driver.getContent('/keep/file')).toString(), 'keep');
    await driver.delete('/keep');
    assert.deepEqual(await names(), []);
  });

  it('appending to a file written by putContent turns it into a manifest whose segment 0 holds the old bytes', async () => {
    const driver = await make();
    await driver.putContent('/f', Buffer.from('head-'));
    const w = await driver.writer('/f', true);
    assert.equal(w.size, 5);
    await w.write(Buffer.from('tail'));
    await w.commit();
    assert.equal((await driver.getContent('/f')).toString(), 'head-tail');
    const segs = (await names('reg/segments/')).map((n) => n.slice(-16));
    assert.deepEqual(segs, ['0000000000000000', '0000000000000001']);
    await driver.delete('/f');
    assert.deepEqual(await names(), []);
  });

  it('redirects GET and HEAD to temp URLs that serve the bytes (the account key, as RGW honours), unless disabled', async () => {
    const driver = await make({ secretkey: 'wharf-test-temp-url-key' });
    const content = randomBytes(2 * MiB + 1);
    const w = await driver.writer('/blob/data', false);
    await w.write(content);
    await w.commit();
    const account = await rgw.request('HEAD', '');
    assert.equal(account.headers.get('x-account-meta-temp-url-key'), 'wharf-test-temp-url-key', 'secretkey was set on the account');
    for (const method of ['GET', 'HEAD']) {
      const url = await driver.redirectURL(method, '/blob/data');
      assert.ok(url, `${method} has a temp URL`);
      const u = new URL(url);
      assert.equal(`${u.origin}${u.pathname}`, `${rgw.storageURL}/${container}/reg/files/blob/data`);
      const expires = Number(u.searchParams.get('temp_url_expires'));
      assert.ok(Math.abs(expires - (Date.now() / 1000 + 1200)) < 60, 'valid 20 minutes');
      assert.match(u.searchParams.get('temp_url_sig') ?? '', /^[0-9a-f]{40}$/);
      const res = await fetch(url, { method });
      assert.equal(res.status, 200);
      if (method === 'GET') assert.ok(Buffer.from(await res.arrayBuffer()).equals(content));
      else assert.equal(res.headers.get('content-length'), String(content.length));
    }
    const tampered = (await driver.redirectURL('GET', '/blob/data'))!.replace(/temp_url_sig=[0-9a-f]/, 'temp_url_sig=0');
    const refused = await fetch(tampered);
    await refused.arrayBuffer();
    assert.ok([401, 403].includes(refused.status), `a tampered signature is refused (${refused.status})`);
    // Another instance without secretkey uses the key the account has.
    const other = await make();
    assert.equal((await fetch((await other.redirectURL('GET', '/blob/data'))!)).status, 200);
    assert.equal(await (await make({}, false)).redirectURL('GET', '/blob/data'), null, 'storage.redirect.disable');
    assert.equal(await driver.redirectURL('PUT', '/blob/data'), null);
    // HP Cloud style signatures: <tenantid>:<accesskey>:<signature>.
    const hp = await make({ secretkey: 'wharf-test-temp-url-key', accesskey: 'AK', tenantid: 'T1' });
    assert.match(new URL((await hp.redirectURL('GET', '/blob/data'))!).searchParams.get('temp_url_sig') ?? '', /^T1:AK:[0-9a-f]{40}$/);
    await driver.delete('/blob');
  });
});
