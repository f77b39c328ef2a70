// The pull-through cache with real clients and real upstreams on loopback:
// - Distribution 2.8 (docker-registry) with htpasswd (basic auth), behind a recording proxy that counts requests;
// - Wharf with auth.token and a token issuer (the Bearer flow).
// One Wharf caches both by prefix (`proxy.upstreams`) and keeps local repositories that take pushes.
// skopeo and podman pull through it (digests and blobs verified), concurrent pulls make one upstream
// download per blob, pushes to cached repositories fail with UNSUPPORTED, content expires after a
// short ttl across a restart, and a cache directory moves between Wharf and docker-registry both ways.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { makePki, startTokenIssuer, type Pki, type TokenIssuer } from '../server/auth-fixtures.js';
import {
  type OciImage,
  type RecordingProxy,
  type RegistryServer,
  getManifest,
  inspectDigest,
  makeTinyImage,
  podman,
  readOciImage,
  requireTools,
  runExpectFailure,
  show,
  skopeoCopy,
  sleep,
  startRecordingProxy,
  startReference,
  startWharf,
  tempDir,
  verifyOciLayout,
} from './harness.js';

const TTL_S = 6;

describe('pull-through cache (proxy) with real clients and upstreams', { timeout: 600_000 }, () => {
  let work: string;
  let pki: Pki;
  let issuer: TokenIssuer;
  let basicUp: RegistryServer;
  let recorder: RecordingProxy;
  let tokenUp: RegistryServer;
  let cache: RegistryServer;
  let cacheData: string;
  let imgA: OciImage;
  let imgB: OciImage;
  let cacheConfig: string[];

  const startCache = () => startWharf({ workDir: work, dataDir: cacheData, extraConfig: cacheConfig });
  const blobFile = (root: string, digest: string) => path.join(root, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
  const upstreamGets = (digest: string) => recorder.requests.filter((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${digest}`)).length;

  before(async () => {
    requireTools('skopeo', 'podman', 'umoci', 'docker-registry');
    work = tempDir('proxy');
    imgA = await makeTinyImage(path.join(work, 'src'), 'a', 4);
    imgB = await makeTinyImage(path.join(work, 'src'), 'b', 2);

    const htpasswd = path.join(work, 'htpasswd');
    fs.writeFileSync(htpasswd, `bob:${bcrypt.hashSync('bob-pw', 5)}\n`);
    basicUp = await startReference(undefined, { workDir: work, extraConfig: ['auth:', '  htpasswd:', '    realm: upstream', `    path: ${htpasswd}`] });
    recorder = await startRecordingProxy(basicUp.port);
    await skopeoCopy(imgA.ref, `docker://${basicUp.host}/team/app:v1`, ['--dest-creds', 'bob:bob-pw']);

    pki = makePki();
    issuer = await startTokenIssuer({ pki, users: { alice: 'alice-pw' }, grant: (user, wanted) => (user === 'alice' ? wanted.actions : []) });
    tokenUp = await startWharf({
      workDir: work,
      extraConfig: ['auth:', '  token:', `    realm: ${issuer.realm}`, '    service: test-registry', '    issuer: test-issuer', `    rootcertbundle: ${pki.bundle}`],
    });
    await skopeoCopy(imgB.ref, `docker://${tokenUp.host}/team/tool:v1`, ['--dest-creds', 'alice:alice-pw']);

    cacheData = path.join(work, 'cache-data');
    cacheConfig = [
      'proxy:',
      '  upstreams:',
      '    - prefix: basic',
      `      remoteurl: ${recorder.url}`,
      '      username: bob',
      '      password: bob-pw',
      `      ttl: ${TTL_S}s`,
      '    - prefix: token',
      `      remoteurl: ${tokenUp.url}`,
      '      username: alice',
      '      password: alice-pw',
    ];
    cache = await startCache();
  });
  after(async () => {
    await cache?.stop();
    await tokenUp?.stop();
    await recorder?.close();
    await basicUp?.stop();
    await issuer?.close();
    if (pki) fs.rmSync(pki.dir, { recursive: true, force: true });
  });

  test('skopeo pulls through both upstreams (basic and Bearer): same digests, every blob verified', async () => {
    for (const [ref, img] of [
      [`${cache.host}/basic/team/app:v1`, imgA],
      [`${cache.host}/token/team/tool:v1`, imgB],
    ] as const) {
      const out = path.join(work, `skopeo-${img.tag}`);
      await skopeoCopy(`docker://${ref}`, `oci:${out}:x`);
      assert.equal(readOciImage(out, 'x').digest, img.digest, `digest of ${ref}`);
      assert.equal(await verifyOciLayout(out), img.blobs.length + 1, 'config, layers and manifest, each hashing to its name');
      assert.equal(await inspectDigest(ref), img.digest);
    }
    assert.ok(issuer.requests.some((r) => r.user === 'alice' && r.scopes.includes('repository:team/tool:pull')), 'the cache asked the token issuer as alice');
    for (const d of imgA.blobs) assert.equal(upstreamGets(d), 1, `one upstream GET of ${d}`);
  });

  test('podman pulls through the cache into fresh storage; the second pull downloads nothing from the upstream', async () => {
    const ref = `${cache.host}/basic/team/app:v1`;
    const store = path.join(work, 'podman');
    await podman(store, ['pull', '-q', '--tls-verify=false', ref]);
    assert.equal((await podman(store, ['image', 'inspect', '--format', '{{.Digest}}', ref])).stdout.trim(), imgA.digest);
    const tokenRef = `${cache.host}/token/team/tool:v1`;
    await podman(store, ['pull', '-q', '--tls-verify=false', tokenRef]);
    assert.equal((await podman(store, ['image', 'inspect', '--format', '{{.Digest}}', tokenRef])).stdout.trim(), imgB.digest);
    for (const d of imgA.blobs) assert.equal(upstreamGets(d), 1, 'served from the cache');
  });

  test('three clients pulling one new image at once: one upstream download per blob', async () => {
    const img = await makeTinyImage(path.join(work, 'src'), 'c', 8);
    await skopeoCopy(img.ref, `docker://${basicUp.host}/team/big:v1`, ['--dest-creds', 'bob:bob-pw']);
    await Promise.all([0, 1, 2].map((i) => skopeoCopy(`docker://${cache.host}/basic/team/big:v1`, `oci:${path.join(work, `many-${i}`)}:x`)));
    for (let i = 0; i < 3; i++) {
      assert.equal(readOciImage(path.join(work, `many-${i}`), 'x').digest, img.digest);
      await verifyOciLayout(path.join(work, `many-${i}`));
    }
    for (const d of img.blobs) assert.equal(upstreamGets(d), 1, `blob ${d} fetched once`);
  });

  test('local repositories take pushes next to the cached ones; pushes to cached ones fail with UNSUPPORTED', async () => {
    await skopeoCopy(imgB.ref, `docker://${cache.host}/mine/app:v1`);
    assert.equal(await inspectDigest(`${cache.host}/mine/app:v1`), imgB.digest);
    const refused = await runExpectFailure('skopeo', ['--insecure-policy', 'copy', '--retry-times', '0', '--dest-tls-verify=false', imgB.ref, `docker://${cache.host}/basic/team/app:v2`]);
    assert.match(refused.stderr, /unsupported|405|Method Not Allowed/i);
    const manifest = await getManifest(cache.url, 'basic/team/app', 'v2');
    assert.equal(manifest.status, 404, show(manifest));
  });

  test('cached content expires after its ttl, also while the cache is stopped; it is fetched again on demand', async () => {
    const layer = imgA.blobs[imgA.blobs.length - 1]!;
    assert.ok(fs.existsSync(blobFile(cacheData, layer)));
    await cache.stop();
    assert.ok(fs.existsSync(path.join(cacheData, 'scheduler-state.json')), 'the expiry state at the storage root (saved on stop), as Distribution keeps it');
    await sleep(TTL_S * 1000 + 500);
    cache = await startCache();
    const deadline = Date.now() + 15_000;
    while (fs.existsSync(blobFile(cacheData, layer)) && Date.now() < deadline) await sleep(200);
    assert.equal(fs.existsSync(blobFile(cacheData, layer)), false, 'expired at start-up');
    assert.ok(fs.existsSync(blobFile(cacheData, imgB.blobs[1]!)), 'the token upstream has the default ttl: its content stays');
    const before = upstreamGets(layer);
    const out = path.join(work, 'after-expiry');
    await skopeoCopy(`docker://${cache.host}/basic/team/app:v1`, `oci:${out}:x`);
    assert.equal(readOciImage(out, 'x').digest, imgA.digest);
    assert.equal(upstreamGets(layer), before + 1, 'downloaded again');
  });
});

describe('a cache directory moves between Wharf and docker-registry 2.8', { timeout: 300_000 }, () => {
  test('each serves the other\'s cached image with the upstream gone, and keeps the other\'s expiry state', async () => {
    requireTools('skopeo', 'umoci', 'docker-registry');
    const work = tempDir('proxy-interop');
    const img = await makeTinyImage(path.join(work, 'src'), 'i', 1);
    let upstream = await startReference(undefined, { workDir: work });
    await skopeoCopy(img.ref, `docker://${upstream.host}/library/app:v1`);
    const proxyConfig = (url: string) => ['proxy:', `  remoteurl: ${url}`];
    for (const [first, second] of [
      ['wharf', 'reference'],
      ['reference', 'wharf'],
    ] as const) {
      const dataDir = path.join(work, `cache-${first}`);
      const start = (kind: 'wharf' | 'reference') =>
        kind === 'wharf' ? startWharf({ workDir: work, dataDir, extraConfig: proxyConfig(upstream.url) }) : startReference(dataDir, { workDir: work, extraConfig: proxyConfig(upstream.url) });
      const a = await start(first);
      await skopeoCopy(`docker://${a.host}/library/app:v1`, `oci:${path.join(work, `${first}-out`)}:x`);
      await sleep(6_000); // both save their expiry state every 5 s
      await a.stop();
      const state = JSON.parse(fs.readFileSync(path.join(dataDir, 'scheduler-state.json'), 'utf8'));
      assert.equal(Object.keys(state).length, img.blobs.length + 1, `${first} scheduled the manifest and each blob`);
      // docker-registry 2.8 will not start as a cache while its upstream is down (it asks it at start-up): stop it after.
      const b = await start(second);
      await upstream.stop();
      try {
        assert.equal(await inspectDigest(`${b.host}/library/app:v1`), img.digest, `${second} serves what ${first} cached`);
        const out = path.join(work, `${second}-from-${first}`);
        await skopeoCopy(`docker://${b.host}/library/app:v1`, `oci:${out}:x`);
        assert.equal(readOciImage(out, 'x').digest, img.digest);
        await verifyOciLayout(out);
      } finally {
        await b.stop();
      }
      assert.equal(Object.keys(JSON.parse(fs.readFileSync(path.join(dataDir, 'scheduler-state.json'), 'utf8'))).length, img.blobs.length + 1, `${second} kept the entries`);
      upstream = await startReference(upstream.dataDir, { workDir: work, port: upstream.port });
    }
    await upstream.stop();
  });
});
