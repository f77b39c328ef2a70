// Wharf on its own Ceph RGW instance (state dir and ports of its own, because this file stops it):
// skopeo pushes and pulls an image with a 1 GiB layer (multipart upload, multipart server-side copy on
// commit), and the backend going away in the middle of a chunked push gives the client 503
// UNAVAILABLE, leaves no blob behind, and pushes work again once RGW is back.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import {
  errorCodes,
  httpRequest,
  inspectDigest,
  makeTinyImage,
  patchChunk,
  readOciImage,
  run,
  SERVICES,
  show,
  skopeoCopy,
  startUpload,
  startWharf,
  tempDir,
  type RegistryServer,
} from './harness.js';
import { roundTrip, storageYaml } from './object-stores.js';
import { bigLayerRoundTrip } from './object-stores.js';
import { openUploads, startRgw, type Rgw } from '../storage/rgw.js';

const MiB = 1024 * 1024;
const RGW_DIR = process.env.WHARF_RGW_FAULTS_DIR || '/tmp/wharf-ceph-rgw-faults';
const rgwEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, WHARF_RGW_DIR: RGW_DIR, RGW_PORT: '7486', CEPH_MON_PORT: '3306' };
  delete env.AWS_CA_BUNDLE;
  return env;
};

describe('s3 on a Ceph RGW of its own: a 1 GiB layer, and the backend failing mid-push', () => {
  let rgw: Rgw;
  let bucket: string;
  let wharf: RegistryServer;

  const rgwScript = (name: string, args: string[] = []): Promise<unknown> =>
    run('bash', [path.join(SERVICES, name), RGW_DIR, ...args], { env: rgwEnv(), timeoutMs: 180_000 });

  before(async () => {
    Object.assign(process.env, { WHARF_RGW_DIR: RGW_DIR, RGW_PORT: '7486', CEPH_MON_PORT: '3306' });
    rgw = await startRgw();
    bucket = await rgw.createBucket('faults');
    wharf = await startWharf({ storage: storageYaml('s3', rgw.options(bucket, { chunksize: 5242880 })) });
  });

  after(async () => {
    await wharf?.stop();
    await rgwScript('ceph-rgw-stop.sh', ['--purge']).catch(() => undefined);
  });

  it('skopeo pushes and pulls an image with a 1 GiB layer; the bytes come back intact', async () => {
    const layer = await bigLayerRoundTrip(wharf.host, 'big/app');
    const head = await httpRequest('HEAD', `${wharf.url}/v2/big/app/blobs/${layer}`);
    assert.equal(Number(head.headers.get('content-length')), 512 + 1024 * MiB + 1024);
    assert.deepEqual(await openUploads(rgw, bucket), [], 'no multipart upload left open');
  });

  it('RGW stopping mid-push answers 503 UNAVAILABLE, leaves no blob, and pushes work again once it is back', async () => {
    const data = randomBytes(12 * MiB);
    const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');
    let loc = await startUpload(wharf.url, 'faults/app');
    loc = await patchChunk(loc, data.subarray(0, 6 * MiB), 0);

    await rgwScript('ceph-rgw-stop.sh');
    const patch = await httpRequest('PATCH', loc, {
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${6 * MiB}-${12 * MiB - 1}` },
      body: data.subarray(6 * MiB),
    });
    assert.equal(patch.status, 503, show(patch));
    assert.deepEqual(errorCodes(patch), ['UNAVAILABLE']);
    assert.match(JSON.parse(patch.body.toString()).errors[0].message, /storage backend is unavailable/);
    const head = await httpRequest('HEAD', `${wharf.url}/v2/faults/app/blobs/${digest}`);
    assert.equal(head.status, 503, show(head));
    const v2 = await httpRequest('GET', `${wharf.url}/v2/`);
    assert.equal(v2.status, 200, 'the API base still answers: Wharf itself is up');

    await rgwScript('ceph-rgw-start.sh');
    const after = await httpRequest('HEAD', `${wharf.url}/v2/faults/app/blobs/${digest}`);
    assert.equal(after.status, 404, `no partial blob: ${show(after)}`);
    const image = await makeTinyImage(`${tempDir('s3-faults-img')}/layout`, 'v1', 12);
    await roundTrip(image, `${wharf.host}/faults/app:v1`);
  });
});
