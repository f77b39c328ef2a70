// What the end-to-end tests of the object-store drivers (s3, azure, gcs, oss, swift) share:
// registries started on a storage block and stopped together, skopeo's push / pull / verify round
// trip, a blob GET's redirect that must serve the blob's bytes, and a chunked push moving between
// two instances on the same store.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { finishUpload, patchChunk, skopeoCopy, startUpload, inspectDigest } from './clients.js';
import { makeBigLayerImage, readOciImage, type OciImage } from './images.js';
import { tempDir } from './process.js';
import { startReference, startWharf, type RegistryServer } from './servers.js';

export { storageYaml } from './storage-yaml.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The registries a test file starts, each on a storage block; `stopAll()` in its `after` hook. */
export class Registries {
  private readonly running: RegistryServer[] = [];

  async wharf(storage: string[]): Promise<RegistryServer> {
    return this.track(await startWharf({ storage }));
  }

  /** Distribution 2.8 (Debian's docker-registry) on the same storage block. */
  async reference(storage: string[]): Promise<RegistryServer> {
    return this.track(await startReference(undefined, { storage }));
  }

  async stop(server: RegistryServer): Promise<void> {
    await server.stop();
    this.running.splice(this.running.indexOf(server), 1);
  }

  async stopAll(): Promise<void> {
    for (const s of this.running) await s.stop();
  }

  private track(server: RegistryServer): RegistryServer {
    this.running.push(server);
    return server;
  }
}

/** skopeo pushes the image to REF (host/repo:tag), and the registry serves the manifest the image has. */
export async function pushImage(image: OciImage, ref: string): Promise<void> {
  await skopeoCopy(image.ref, `docker://${ref}`);
  assert.equal(await inspectDigest(ref), image.digest);
}

/** skopeo pulls REF into a fresh OCI layout (verifying every digest) and gets the image's blobs, no more, no fewer. */
export async function pullImage(image: OciImage, ref: string): Promise<void> {
  const layout = `${tempDir('pull')}/layout`;
  await skopeoCopy(`docker://${ref}`, `oci:${layout}:t`);
  assert.deepEqual(readOciImage(layout, 't').blobs.sort(), [...image.blobs].sort());
}

/** The registry serves the image at REF as pushed: its manifest digest, then every blob through a pull. */
export async function assertServes(image: OciImage, ref: string): Promise<void> {
  assert.equal(await inspectDigest(ref), image.digest);
  await pullImage(image, ref);
}

/** Push, then pull back and verify: the round trip of a registry on a store. */
export async function roundTrip(image: OciImage, ref: string): Promise<void> {
  await pushImage(image, ref);
  await pullImage(image, ref);
}

/** A blob GET is answered 307, and the location serves the blob's very bytes; returns the location. */
export async function followBlobRedirect(server: RegistryServer, repo: string, digest: string): Promise<string> {
  const res = await fetch(`${server.url}/v2/${repo}/blobs/${digest}`, { redirect: 'manual' });
  assert.equal(res.status, 307);
  const location = res.headers.get('location')!;
  const direct = await fetch(location);
  assert.equal(direct.status, 200, location);
  assert.equal(sha256(Buffer.from(await direct.arrayBuffer())), digest);
  return location;
}

/** The largest of the image's blobs by the size the store reports for each (the big layer). */
export async function largestBlob(image: OciImage, sizeOf: (digest: string) => Promise<number> | number): Promise<{ digest: string; size: number }> {
  const sizes = await Promise.all(image.blobs.map(async (digest) => ({ digest, size: await sizeOf(digest) })));
  return sizes.sort((x, y) => y.size - x.size)[0]!;
}

/**
 * A blob pushed in three chunks (the first over 5 MiB, a part of its own), the middle one to B,
 * the others to A, both on the same store: the upload resumes across instances, and B (redirects
 * off) serves the blob byte for byte.
 */
export async function chunkedPushAcross(a: RegistryServer, b: RegistryServer, repo: string): Promise<void> {
  const chunks = [randomBytes(5 * 1024 * 1024 + 7), randomBytes(300_000), randomBytes(4 * 1024 * 1024)] as const;
  const blob = Buffer.concat(chunks);
  const digest = sha256(blob);
  let loc = await startUpload(a.url, repo);
  loc = await patchChunk(loc, chunks[0], 0);
  loc = await patchChunk(loc.replace(a.url, b.url), chunks[1], chunks[0].length);
  const done = await finishUpload(loc.replace(b.url, a.url), digest, chunks[2]);
  assert.equal(done.status, 201);
  const res = await fetch(`${b.url}/v2/${repo}/blobs/${digest}`, { redirect: 'manual' });
  assert.equal(res.status, 200);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(blob));
}

/**
 * skopeo pushes an image whose one layer is 1 GiB of uncompressed data to HOST/REPO:v1 and pulls it
 * back (skopeo checks every digest); returns the layer's digest.
 */
export async function bigLayerRoundTrip(host: string, repo: string): Promise<string> {
  const image = await makeBigLayerImage(`${tempDir('big')}/layout`, 1024 * 1024 * 1024);
  // --preserve-digests: skopeo would otherwise gzip the uncompressed layer on the way (slow, and a new digest).
  await skopeoCopy(image.ref, `docker://${host}/${repo}:v1`, ['--preserve-digests']);
  assert.equal(await inspectDigest(`${host}/${repo}:v1`), image.digest);
  const layout = `${tempDir('big-pull')}/layout`;
  await skopeoCopy(`docker://${host}/${repo}:v1`, `oci:${layout}:t`, ['--preserve-digests']);
  assert.ok(readOciImage(layout, 't').blobs.includes(image.layer));
  return image.layer;
}
