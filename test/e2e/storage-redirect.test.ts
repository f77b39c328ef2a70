// Storage middleware with real clients. `redirect`: the registry on the filesystem driver sends
// blob GETs to a plain file server over its rootdirectory (a stand-in for a CDN); skopeo pulls and
// every blob's bytes come through that server. `cloudfront`: the registry on Ceph RGW (s3 driver)
// sends blob GETs to a fake CloudFront (test/storage/cloudfront-fake.ts) that refuses URLs whose
// canned-policy signature does not verify; skopeo pulls through it, and Distribution 2.8 with the
// same configuration signs byte for byte what Wharf signs. With `ipfilteredby`, a client in the
// served ip-ranges.json (127.0.0.0/8) goes straight to RGW.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { signCloudFrontURL } from '../../src/storage/middleware/cloudfront.js';
import { inspectDigest, makeTinyImage, readOciImage, sha256File, skopeoCopy, startReference, startTarget, startWharf, tempDir, TARGET, type OciImage, type RegistryServer } from './harness.js';
import { startFakeCloudFront, verifyCloudFrontURL, type FakeCloudFront } from '../storage/cloudfront-fake.js';
import { openUploads, startRgw, type Rgw } from '../storage/rgw.js';
import { startStaticServer, type StaticServer } from '../storage/static-server.js';

const blobKey = (digest: string) => {
  const hex = digest.slice('sha256:'.length);
  return `docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
};

/** Pull REF into a fresh OCI layout; skopeo checks every digest, and so do we. */
async function pull(ref: string): Promise<string[]> {
  const layout = `${tempDir('redirect-pull')}/layout`;
  await skopeoCopy(`docker://${ref}`, `oci:${layout}:t`);
  const { blobs } = readOciImage(layout, 't');
  for (const digest of blobs) assert.equal(await sha256File(`${layout}/blobs/sha256/${digest.slice(7)}`), digest);
  return blobs.sort();
}

describe(`redirect middleware (${TARGET}): skopeo pulls blobs from a file server over the rootdirectory`, () => {
  let cdn: StaticServer;
  let registry: RegistryServer;
  let image: OciImage;

  before(async () => {
    const dataDir = tempDir('redirect-data');
    cdn = await startStaticServer(dataDir);
    registry = await startTarget({ dataDir, extraConfig: ['middleware:', '  storage:', '    - name: redirect', '      options:', `        baseurl: ${cdn.url}`] });
    image = await makeTinyImage(`${tempDir('redirect-img')}/layout`, 'v1', 3);
  });

  after(async () => {
    await registry?.stop();
    await cdn?.close();
  });

  it('push, then pull: each blob GET is a 307 to the file server, which sends the bytes', async () => {
    await skopeoCopy(image.ref, `docker://${registry.host}/cdn/app:v1`);
    assert.equal(cdn.requests.length, 0, 'a push reads no blob');
    assert.equal(await inspectDigest(`${registry.host}/cdn/app:v1`), image.digest);
    assert.deepEqual(await pull(`${registry.host}/cdn/app:v1`), [...image.blobs].sort());
    // The config and every layer came through the file server, in full (manifests the registry serves).
    for (const digest of image.blobs) {
      const size = fs.statSync(`${registry.dataDir}/${blobKey(digest)}`).size;
      const served = cdn.requests.filter((r) => r.method === 'GET' && r.path === `/${blobKey(digest)}` && r.status === 200);
      assert.ok(served.length >= 1 && served.every((r) => r.bytes === size), `${digest} through the file server: ${JSON.stringify(cdn.requests)}`);
    }
    const res = await fetch(`${registry.url}/v2/cdn/app/blobs/${image.blobs[1]}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    assert.equal(res.headers.get('location'), `${cdn.url}/${blobKey(image.blobs[1])}`);
  });
});

describe('cloudfront middleware on Ceph RGW: Wharf and Distribution 2.8', () => {
  const KEY_PAIR_ID = 'K2JCJMDEHXQW5F';
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let rgw: Rgw;
  let bucket: string;
  let cloudfront: FakeCloudFront;
  let ipRanges: http.Server;
  let ipRangesURL: string;
  let keyFile: string;
  let image: OciImage;
  const servers: RegistryServer[] = [];

  before(async () => {
    rgw = await startRgw();
    bucket = await rgw.createBucket('cloudfront');
    cloudfront = await startFakeCloudFront({ client: rgw.client, bucket, keyPairId: KEY_PAIR_ID, publicKey });
    keyFile = `${tempDir('cloudfront-key')}/pk.pem`;
    fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs1', format: 'pem' }));
    const body = JSON.stringify({ prefixes: [{ ip_prefix: '127.0.0.0/8', region: 'local-test-1', service: 'AMAZON' }], ipv6_prefixes: [] });
    ipRanges = http.createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(body));
    await new Promise<void>((ok) => ipRanges.listen(0, '127.0.0.1', ok));
    ipRangesURL = `http://127.0.0.1:${(ipRanges.address() as AddressInfo).port}/ip-ranges.json`;
    image = await makeTinyImage(`${tempDir('cloudfront-img')}/layout`, 'v1', 6);
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await cloudfront?.close();
    ipRanges?.close();
    if (bucket) {
      const leaked = await openUploads(rgw, bucket);
      await rgw.removeBucket(bucket);
      assert.deepEqual(leaked, [], 'no multipart upload is left open');
    }
  });

  async function start(kind: 'wharf' | 'reference', options: string[] = []): Promise<RegistryServer> {
    const storage = [
      '  s3:',
      ...Object.entries({ ...rgw.options(bucket), rootdirectory: '/cf/root', v4auth: true }).map(([k, v]) => `    ${k}: ${v}`),
    ];
    const extraConfig = [
      'middleware:',
      '  storage:',
      '    - name: cloudfront',
      '      options:',
      `        baseurl: ${cloudfront.url}`,
      `        privatekey: ${keyFile}`,
      `        keypairid: ${KEY_PAIR_ID}`,
      '        duration: 600s',
      ...options.map((o) => `        ${o}`),
    ];
    const server = kind === 'wharf' ? await startWharf({ storage, extraConfig }) : await startReference(undefined, { storage, extraConfig });
    servers.push(server);
    return server;
  }

  const through = () => cloudfront.requests.filter((r) => r.status === 200).length;

  it('Wharf: skopeo push and pull; blobs come through CloudFront, whose signature check they pass', async () => {
    const wharf = await start('wharf');
    await skopeoCopy(image.ref, `docker://${wharf.host}/cf/app:v1`);
    const before = through();
    assert.deepEqual(await pull(`${wharf.host}/cf/app:v1`), [...image.blobs].sort());
    assert.ok(through() - before >= image.blobs.length, `every blob through CloudFront: ${JSON.stringify(cloudfront.requests)}`);
    assert.equal(cloudfront.requests.filter((r) => r.status === 403).length, 0, 'no URL was refused');

    const started = Math.floor(Date.now() / 1000);
    const res = await fetch(`${wharf.url}/v2/cf/app/blobs/${image.blobs[1]}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    const signed = verifyCloudFrontURL(res.headers.get('location')!, publicKey);
    assert.equal(signed.resource, `${cloudfront.url}cf/root/${blobKey(image.blobs[1])}`);
    assert.ok(signed.expires >= started + 600 && signed.expires <= started + 602, `expires after duration (600s): ${signed.expires - started}`);
    // CloudFront refuses a tampered URL.
    const tampered = await fetch(res.headers.get('location')!.replace(/Expires=\d+/, `Expires=${signed.expires + 1}`));
    assert.equal(tampered.status, 403);
    await wharf.stop();
  });

  it('Distribution 2.8 signs the same URL byte for byte, and skopeo pulls through it too', async () => {
    const reference = await start('reference');
    const layer = image.blobs[1];
    const res = await fetch(`${reference.url}/v2/cf/app/blobs/${layer}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    const location = res.headers.get('location')!;
    const signed = verifyCloudFrontURL(location, publicKey);
    assert.equal(signCloudFrontURL(signed.resource, KEY_PAIR_ID, privateKey, signed.expires), location);
    const before = through();
    assert.deepEqual(await pull(`${reference.host}/cf/app:v1`), [...image.blobs].sort());
    assert.ok(through() > before);
    await reference.stop();
  });

  for (const kind of ['wharf', 'reference'] as const) {
    it(`${kind}: ipfilteredby awsregion sends a client in the ranges to RGW, presigned; another region to CloudFront`, async () => {
      const inRegion = await start(kind, ['ipfilteredby: awsregion', 'awsregion: us-east-1, local-test-1', `iprangesurl: ${ipRangesURL}`]);
      const layer = image.blobs[1];
      const res = await fetch(`${inRegion.url}/v2/cf/app/blobs/${layer}`, { redirect: 'manual' });
      assert.equal(res.status, 307);
      assert.ok(res.headers.get('location')!.startsWith(`${rgw.endpoint}/${bucket}/cf/root/${blobKey(layer)}?`), res.headers.get('location')!);
      const before = through();
      assert.deepEqual(await pull(`${inRegion.host}/cf/app:v1`), [...image.blobs].sort());
      assert.equal(through(), before, 'nothing through CloudFront');
      await inRegion.stop();

      const otherRegion = await start(kind, ['ipfilteredby: awsregion', 'awsregion: us-east-1', `iprangesurl: ${ipRangesURL}`]);
      const other = await fetch(`${otherRegion.url}/v2/cf/app/blobs/${layer}`, { redirect: 'manual' });
      verifyCloudFrontURL(other.headers.get('location')!, publicKey);
      await otherRegion.stop();
    });
  }
});
