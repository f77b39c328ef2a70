// Online garbage collection under load: Wharf collects every few hundred milliseconds while clients
// push images (sharing layers), delete some, and re-push images whose layers the registry still has
// unreferenced (the client skips the upload after a HEAD, the race a collector must not lose).
// Afterwards every tagged image pulls and every blob hashes to its digest, and the collector did
// delete what nothing referenced.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { skopeoCopy, makeTinyImage, inspectDigest, startWharf, tempDir, type RegistryServer } from './harness.js';

const sha = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

interface Image {
  repo: string;
  tag: string;
  layers: Buffer[];
  config: Buffer;
  manifest: Buffer;
  digest: string;
}

function image(repo: string, tag: string, layers: Buffer[]): Image {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map(sha) }, tag }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(l), size: l.length })),
    }),
  );
  return { repo, tag, layers, config, manifest, digest: sha(manifest) };
}

class Client {
  constructor(private readonly base: string) {}

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    const r = await fetch(`${this.base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
    return r.status === 200;
  }

  async upload(repo: string, data: Buffer): Promise<void> {
    const post = await fetch(`${this.base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    assert.equal(post.status, 202);
    const loc = new URL(post.headers.get('location')!, this.base);
    loc.searchParams.set('digest', sha(data));
    const put = await fetch(loc, { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 201, await put.text());
  }

  /** As real clients do: HEAD each blob, upload the missing ones, then PUT the manifest. */
  async push(img: Image): Promise<'ok' | 'retried'> {
    for (let attempt = 0; ; attempt++) {
      for (const blob of [...img.layers, img.config]) if (!(await this.hasBlob(img.repo, sha(blob)))) await this.upload(img.repo, blob);
      const put = await fetch(`${this.base}/v2/${img.repo}/manifests/${img.tag}`, {
        method: 'PUT',
        body: img.manifest,
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      });
      if (put.status === 201) return attempt === 0 ? 'ok' : 'retried';
      const body = await put.text();
      // A blob collected between the HEAD and the PUT is reported, never stored as a dangling reference.
      assert.ok(put.status === 400 && body.includes('MANIFEST_BLOB_UNKNOWN') && attempt < 3, `manifest PUT ${put.status}: ${body}`);
    }
  }

  async remove(img: Image): Promise<void> {
    const r = await fetch(`${this.base}/v2/${img.repo}/manifests/${img.digest}`, { method: 'DELETE' });
    assert.ok(r.status === 202 || r.status === 404, `DELETE manifest: ${r.status}`);
  }

  async verify(img: Image): Promise<void> {
    const m = await fetch(`${this.base}/v2/${img.repo}/manifests/${img.tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(m.status, 200, `${img.repo}:${img.tag} manifest`);
    const bytes = Buffer.from(await m.arrayBuffer());
    assert.equal(sha(bytes), img.digest);
    for (const blob of [...img.layers, img.config]) {
      const r = await fetch(`${this.base}/v2/${img.repo}/blobs/${sha(blob)}`);
      assert.equal(r.status, 200, `${img.repo}:${img.tag} blob ${sha(blob)}`);
      assert.equal(sha(Buffer.from(await r.arrayBuffer())), sha(blob));
    }
  }
}

function countBlobs(root: string): number {
  const dir = path.join(root, 'docker/registry/v2/blobs/sha256');
  if (!fs.existsSync(dir)) return 0;
  let n = 0;
  for (const prefix of fs.readdirSync(dir)) n += fs.readdirSync(path.join(dir, prefix)).length;
  return n;
}

describe('online garbage collection', () => {
  const servers: RegistryServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  it('collects repeatedly during continuous pushes and deletes; every tagged image still pulls and verifies', async () => {
    const dataDir = tempDir('online-gc');
    const wharf = await startWharf({
      dataDir,
      storage: ['  filesystem:', `    rootdirectory: ${dataDir}`, '  gc:', '    enabled: true', '    interval: 150ms', '    graceperiod: 3s'],
    });
    servers.push(wharf);
    const client = new Client(wharf.url);
    // A pool of layers that images share, so deleting one image leaves blobs others still use.
    const pool = Array.from({ length: 24 }, () => randomBytes(16 * 1024 + Math.floor(Math.random() * 64 * 1024)));
    const pick = (): Buffer[] => Array.from({ length: 3 }, () => pool[Math.floor(Math.random() * pool.length)]!);
    const kept = new Map<string, Image>();
    const deleted: Image[] = [];
    let retried = 0;
    // 16 s of traffic: blobs left by deletions pass the 3 s grace period and get collected meanwhile.
    const deadline = Date.now() + 16_000;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; Date.now() < deadline; i++) {
        const img = image(`gc/w${w}`, `t${i}`, [...pick(), randomBytes(8192)]);
        if ((await client.push(img)) === 'retried') retried++;
        kept.set(`${img.repo}:${img.tag}`, img);
        if (i % 3 === 2) {
          // Delete an earlier image of this worker (its unique layer becomes garbage) ...
          const victim = kept.get(`gc/w${w}:t${i - 2}`);
          if (victim) {
            await client.remove(victim);
            kept.delete(`${victim.repo}:${victim.tag}`);
            deleted.push(victim);
          }
        }
        if (i % 4 === 3 && deleted.length > 0) {
          // ... and bring a deleted one back under a new tag: its layers may still be on disk, unreferenced.
          const old = deleted[Math.floor(Math.random() * deleted.length)]!;
          const again = image(`gc/w${w}`, `back${i}`, old.layers);
          if ((await client.push(again)) === 'retried') retried++;
          kept.set(`${again.repo}:${again.tag}`, again);
        }
      }
    };
    // A real client pushing at the same time.
    const skopeoPush = (async () => {
      const img = await makeTinyImage(`${tempDir('online-gc-img')}/layout`, 'v1', 3);
      await skopeoCopy(img.ref, `docker://${wharf.host}/gc/skopeo:v1`);
      return img;
    })();
    await Promise.all([0, 1, 2, 3].map(worker));
    const skopeoImage = await skopeoPush;

    const before = countBlobs(dataDir);
    for (const img of kept.values()) await client.verify(img);
    assert.equal(await inspectDigest(`${wharf.host}/gc/skopeo:v1`), skopeoImage.digest);
    await skopeoCopy(`docker://${wharf.host}/gc/skopeo:v1`, `oci:${tempDir('online-gc-pull')}/layout:t`);

    // The collector ran many times and deleted the unique layers of deleted images.
    const log = fs.readFileSync(wharf.logPath, 'utf8');
    const runs = [...log.matchAll(/online garbage collection: (\d+) blobs/g)].map((m) => Number(m[1]));
    assert.ok(runs.length >= 10, `collector runs: ${runs.length}`);
    const reclaimed = runs.reduce((a, b) => a + b, 0);
    assert.ok(reclaimed > 0, 'blobs were reclaimed');
    assert.ok(deleted.length > 0);
    // Quiet now: past the grace period nothing unreferenced is left.
    await new Promise((r) => setTimeout(r, 3600));
    const after = countBlobs(dataDir);
    assert.ok(after <= before, `blob count ${before} -> ${after}`);
    for (const img of kept.values()) await client.verify(img);
    console.log(`online gc: ${kept.size} images kept, ${deleted.length} deleted, ${runs.length} runs, ${reclaimed} blobs reclaimed, ${retried} manifest PUTs retried`);
  });
});
