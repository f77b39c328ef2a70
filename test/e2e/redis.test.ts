// A fleet of Wharf and docker-registry 2.8 on ONE data directory and ONE Redis database (2 of the
// shared redis-server from scripts/services/redis-start.sh), both with storage.cache.blobdescriptor:
// redis, running at the same time: what one pushes the other serves, each reads the descriptors the
// other wrote, and deletes through either are seen by both. Then Distribution's bug #1803: after a
// layer is deleted and garbage-collected, a re-push of the same image must upload it again.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { dump, sharedRedis } from '../registry/redis-helpers.js';
import {
  type OciImage,
  type RegistryServer,
  ROOT,
  httpRequest,
  makeTinyImage,
  readOciImage,
  requireTools,
  run,
  skopeoCopy,
  startRecordingProxy,
  startReference,
  startWharf,
  tempDir,
  verifyOciLayout,
} from './harness.js';

const DB = 2;
const OCTET = 'application/octet-stream';

describe('Wharf and docker-registry sharing storage and a redis cache', { timeout: 300_000 }, () => {
  let work: string;
  let dataDir: string;
  let redisLines: string[];
  let r: Redis;
  let wharf: RegistryServer;
  let ref: RegistryServer;
  let img1: OciImage;
  let img2: OciImage;

  const storage = () => ['  filesystem:', `    rootdirectory: ${dataDir}`, '  cache:', '    blobdescriptor: redis'];
  const startBoth = async () => {
    wharf = await startWharf({ dataDir, workDir: work, port: wharf?.port, storage: storage(), extraConfig: redisLines });
    ref = await startReference(dataDir, { workDir: work, port: ref?.port, storage: storage(), extraConfig: redisLines });
  };
  const stopBoth = async () => {
    await wharf.stop();
    await ref.stop();
  };
  const blobData = (digest: string) => path.join(dataDir, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
  const head = async (s: RegistryServer, repo: string, digest: string) => (await httpRequest('HEAD', `${s.url}/v2/${repo}/blobs/${digest}`)).status;

  async function pullAndVerify(s: RegistryServer, repo: string, img: OciImage): Promise<void> {
    const out = path.join(work, `pulled-${s.kind}-${repo.replace(/\//g, '_')}-${Date.now()}`);
    await skopeoCopy(`docker://${s.host}/${repo}:v1`, `oci:${out}:v1`);
    const pulled = readOciImage(out, 'v1');
    assert.equal(pulled.digest, img.digest, `${s.kind}: digest of ${repo}`);
    assert.deepEqual(pulled.blobs, img.blobs, `${s.kind}: blobs of ${repo}`);
    await verifyOciLayout(out);
  }

  /**
   * Push with skopeo through a recording proxy; per blob of the image, whether skopeo uploaded it (a
   * PUT …digest=…) or skipped it because the registry answered HEAD 200 ("already exists").
   */
  async function push(target: RegistryServer, img: OciImage, repo: string): Promise<{ uploaded: string[]; skipped: string[] }> {
    const proxy = await startRecordingProxy(target.port);
    try {
      await skopeoCopy(img.ref, `docker://${proxy.host}/${repo}:v1`);
    } finally {
      await proxy.close();
    }
    const put = (d: string) => proxy.requests.some((q) => q.method === 'PUT' && q.url.includes('/blobs/uploads/') && q.url.includes(d.slice(7)) && q.status === 201);
    const known = (d: string) => proxy.requests.some((q) => q.method === 'HEAD' && q.url.endsWith(`/blobs/${d}`) && q.status === 200);
    return { uploaded: img.blobs.filter(put), skipped: img.blobs.filter((d) => known(d) && !put(d)) };
  }

  before(async () => {
    requireTools('skopeo', 'umoci', 'docker-registry');
    const redis = await sharedRedis();
    r = redis.client(DB);
    await r.flushdb();
    redisLines = ['redis:', `  addr: ${redis.addr}`, `  db: ${DB}`];
    work = tempDir('redis');
    dataDir = path.join(work, 'data');
    img1 = await makeTinyImage(path.join(work, 'src'), 'one', 1);
    img2 = await makeTinyImage(path.join(work, 'src'), 'two', 1);
    await startBoth();
  });
  after(async () => {
    await wharf?.stop();
    await ref?.stop();
    await r?.flushdb();
    r?.disconnect();
  });

  test('a push through one is pulled through the other; both write the same descriptors', async () => {
    assert.deepEqual(await push(wharf, img1, 'fleet/wharf'), { uploaded: img1.blobs, skipped: [] });
    await skopeoCopy(img2.ref, `docker://${ref.host}/fleet/ref:v1`);
    // The same push again, through the other registry: every blob is known from Redis, none uploaded.
    assert.deepEqual(await push(ref, img1, 'fleet/wharf'), { uploaded: [], skipped: img1.blobs });
    await pullAndVerify(ref, 'fleet/wharf', img1);
    await pullAndVerify(wharf, 'fleet/ref', img2);
    const keys = await dump(r);
    for (const [repo, img] of [['fleet/wharf', img1], ['fleet/ref', img2]] as const) {
      for (const d of img.blobs) {
        const size = String(fs.statSync(blobData(d)).size);
        assert.deepEqual(keys[`blobs::${d}`], { digest: d, size, mediatype: OCTET }, `blobs::${d} (${repo})`);
        assert.ok((keys[`repository::${repo}::blobs`] as string[]).includes(d), `${repo} set lacks ${d}`);
        assert.deepEqual(keys[`repository::${repo}::blobs::${d}`], { mediatype: OCTET });
      }
    }
  });

  test('a blob deleted through either registry is unknown to both', async () => {
    const [config1] = img1.blobs;
    const [config2] = img2.blobs;
    for (const s of [wharf, ref]) {
      assert.equal(await head(s, 'fleet/wharf', config1!), 200);
      assert.equal(await head(s, 'fleet/ref', config2!), 200);
    }
    assert.equal((await httpRequest('DELETE', `${wharf.url}/v2/fleet/ref/blobs/${config2}`)).status, 202);
    assert.equal((await httpRequest('DELETE', `${ref.url}/v2/fleet/wharf/blobs/${config1}`)).status, 202);
    for (const s of [wharf, ref]) {
      assert.equal(await head(s, 'fleet/ref', config2!), 404, `${s.kind} after Wharf's delete`);
      assert.equal(await head(s, 'fleet/wharf', config1!), 404, `${s.kind} after docker-registry's delete`);
    }
  });

  test('#1803: after a layer is deleted and garbage-collected, a re-push uploads it again and the image pulls', async () => {
    const images: [string, OciImage][] = [
      ['issue/via-wharf', await makeTinyImage(path.join(work, 'src'), 'three', 1)],
      ['issue/via-ref', await makeTinyImage(path.join(work, 'src'), 'four', 1)],
    ];
    for (const [repo, img] of images) {
      await skopeoCopy(img.ref, `docker://${wharf.host}/${repo}:v1`);
      for (const s of [wharf, ref]) for (const d of img.blobs) assert.equal(await head(s, repo, d), 200);
      // Delete the image and one of its layers through the API; garbage collection removes the data.
      assert.equal((await httpRequest('DELETE', `${wharf.url}/v2/${repo}/manifests/${img.digest}`)).status, 202);
      assert.equal((await httpRequest('DELETE', `${ref.url}/v2/${repo}/blobs/${img.blobs[1]}`)).status, 202);
    }
    await stopBoth();
    const gc = await run(process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'garbage-collect', wharf.configPath]);
    assert.match(gc.stderr, /redis blob descriptor cache: removed \d+ blob descriptors/);
    for (const [repo, img] of images) {
      for (const d of img.blobs) {
        assert.ok(!fs.existsSync(blobData(d)), `${d} still in storage`);
        assert.equal(await r.exists(`blobs::${d}`), 0, `blobs::${d} still in Redis`);
        assert.equal(await r.sismember(`repository::${repo}::blobs`, d), 0, `${repo} still lists ${d}`);
      }
    }
    await startBoth();
    // Re-push the same images, through each registry: every blob is uploaded again, none "already exists".
    const pushers = [wharf, ref];
    for (const [i, [repo, img]] of images.entries()) {
      const pusher = pushers[i]!;
      for (const s of [wharf, ref]) for (const d of img.blobs) assert.equal(await head(s, repo, d), 404, `${s.kind} HEAD ${d}`);
      assert.deepEqual(await push(pusher, img, repo), { uploaded: img.blobs, skipped: [] }, `${pusher.kind} re-push`);
      for (const d of img.blobs) assert.ok(fs.existsSync(blobData(d)), `${d} not uploaded again`);
      await pullAndVerify(wharf, repo, img);
      await pullAndVerify(ref, repo, img);
    }
  });
});
