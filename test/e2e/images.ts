// Test images: digests, OCI layouts, umoci-made images and the Debian base image.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CACHE_DIR, SERVICES, requireRoot, requireTools, run, sleep, tempDir } from './process.js';
// ------------------------------------------------------------------------------------------------
// digests and OCI layouts

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    fs.createReadStream(file)
      .on('error', reject)
      .on('data', (b) => h.update(b))
      .on('end', () => resolve('sha256:' + h.digest('hex')));
  });
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface OciImage {
  layout: string;
  tag: string;
  /** skopeo transport reference, oci:LAYOUT:TAG */
  ref: string;
  /** digest of the manifest (or index) the tag points at */
  digest: string;
  mediaType: string;
  /** config + layer digests (for an index: those of every child) */
  blobs: string[];
  /** for an index: the child manifests */
  children?: Descriptor[];
}

export function blobPath(layout: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  return path.join(layout, 'blobs', alg, hex);
}

export function readBlobJson(layout: string, digest: string): any {
  return JSON.parse(fs.readFileSync(blobPath(layout, digest), 'utf8'));
}

/** Reads what TAG points at in an OCI image layout. */
export function readOciImage(layout: string, tag: string): OciImage {
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
  const desc = (index.manifests as Descriptor[]).find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!desc) throw new Error(`tag ${tag} not found in ${layout}/index.json`);
  const blobsOf = (manifestDigest: string): string[] => {
    const m = readBlobJson(layout, manifestDigest);
    return [m.config.digest, ...m.layers.map((l: Descriptor) => l.digest)];
  };
  const img: OciImage = { layout, tag, ref: `oci:${layout}:${tag}`, digest: desc.digest, mediaType: desc.mediaType, blobs: [] };
  const top = readBlobJson(layout, desc.digest);
  if (Array.isArray(top.manifests)) {
    img.children = top.manifests;
    img.blobs = (top.manifests as Descriptor[]).flatMap((c) => blobsOf(c.digest));
  } else {
    img.blobs = blobsOf(desc.digest);
  }
  return img;
}

/** Checks that every blob in an OCI layout hashes to its file name; returns how many there are. */
export async function verifyOciLayout(layout: string): Promise<number> {
  const dir = path.join(layout, 'blobs', 'sha256');
  const names = fs.readdirSync(dir);
  for (const n of names) {
    const got = await sha256File(path.join(dir, n));
    if (got !== `sha256:${n}`) throw new Error(`corrupt blob in ${layout}: file sha256:${n} hashes to ${got}`);
  }
  return names.length;
}

/** Unpacks TAG of an OCI layout (umoci, rootless) and returns the bundle's rootfs path. */
export async function unpackOci(layout: string, tag: string): Promise<string> {
  requireTools('umoci');
  const bundle = path.join(tempDir('unpack'), 'bundle');
  await run('umoci', ['unpack', '--rootless', '--image', `${layout}:${tag}`, bundle]);
  return path.join(bundle, 'rootfs');
}

// ------------------------------------------------------------------------------------------------
// test images

/** A 2-layer image (small text files + MB MiB of random data) made with umoci, tagged TAG in LAYOUT. */
export async function makeTinyImage(layout: string, tag: string, mb = 2, arch = 'amd64'): Promise<OciImage> {
  requireTools('umoci');
  await run(path.join(SERVICES, 'make-test-image.sh'), ['tiny', layout, tag, String(mb), arch]);
  return readOciImage(layout, tag);
}

/** A 2-platform (linux/amd64 + linux/arm64) OCI image index tagged TAG in its own new LAYOUT. */
export async function makeMultiArchImage(layout: string, tag: string, mb = 1): Promise<OciImage> {
  const amd = await makeTinyImage(layout, `${tag}-amd64`, mb, 'amd64');
  const arm = await makeTinyImage(layout, `${tag}-arm64`, mb, 'arm64');
  const child = (img: OciImage, architecture: string): Descriptor => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: img.digest,
    size: fs.statSync(blobPath(layout, img.digest)).size,
    platform: { architecture, os: 'linux' },
  });
  const indexBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [child(amd, 'amd64'), child(arm, 'arm64')],
    }),
  );
  const digest = sha256(indexBytes);
  fs.writeFileSync(blobPath(layout, digest), indexBytes);
  const indexJson = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
  indexJson.manifests.push({
    mediaType: 'application/vnd.oci.image.index.v1+json',
    digest,
    size: indexBytes.length,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  });
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify(indexJson));
  return readOciImage(layout, tag);
}

/** A realistic Debian bookworm base image (debootstrap --variant=minbase, one ~50 MB gzip layer),
 *  built once per day and cached under CACHE_DIR/debian-bookworm-YYYYMMDD. Needs root and the
 *  Debian mirror (about 40 s to build). */
export async function makeDebianImage(): Promise<OciImage> {
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');
  const key = `debian-bookworm-${day}`;
  const dir = path.join(CACHE_DIR, key);
  const usable = () => {
    try {
      return readOciImage(dir, 'bookworm');
    } catch {
      return null;
    }
  };
  const hit = usable();
  if (hit) return hit;
  requireRoot('building the Debian test image with debootstrap');
  requireTools('debootstrap', 'umoci');
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  // one builder at a time (test files run in parallel processes)
  const lock = path.join(CACHE_DIR, `${key}.lock`);
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      const again = usable();
      if (again) return again;
      let stale = false;
      try {
        stale = Date.now() - fs.statSync(lock).mtimeMs > 10 * 60_000;
      } catch {
        /* just released */
      }
      if (stale) fs.rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for another process to build ${dir} (lock ${lock})`);
      await sleep(500);
    }
  }
  try {
    const again = usable();
    if (again) return again;
    const building = `${dir}.tmp-${process.pid}`;
    fs.rmSync(building, { recursive: true, force: true });
    await run(path.join(SERVICES, 'make-test-image.sh'), ['debian', building, 'bookworm'], { timeoutMs: 10 * 60_000 });
    fs.renameSync(building, dir);
    // drop older days' images
    for (const n of fs.readdirSync(CACHE_DIR)) {
      if (n.startsWith('debian-bookworm-') && n !== key && !n.endsWith('.lock')) {
        fs.rmSync(path.join(CACHE_DIR, n), { recursive: true, force: true });
      }
    }
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
  const built = usable();
  if (!built) throw new Error(`Debian image build left no usable layout in ${dir}`);
  return built;
}

/**
 * An OCI layout holding one image whose only layer is an uncompressed tar of `bytes` random bytes
 * (a 16 MiB random block repeated: fast to make, nothing compresses or deduplicates it in transit).
 */
export async function makeBigLayerImage(layout: string, bytes: number): Promise<{ ref: string; digest: string; layer: string }> {
  fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const header = Buffer.alloc(512);
  const field = (s: string, off: number, len: number): void => void header.write(s.padEnd(len, '\0').slice(0, len), off, 'latin1');
  field('big.bin', 0, 100);
  field('0000644', 100, 8);
  field('0000000', 108, 8);
  field('0000000', 116, 8);
  field(bytes.toString(8).padStart(11, '0'), 124, 12);
  field('00000000000', 136, 12);
  field('        ', 148, 8);
  field('0', 156, 1);
  field('ustar', 257, 6);
  field('00', 263, 2);
  let sum = 0;
  for (const b of header) sum += b;
  field(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  const block = randomBytes(16 * 1024 * 1024);
  const tmp = path.join(layout, 'layer.tmp');
  const out = fs.createWriteStream(tmp);
  const hash = createHash('sha256');
  const put = async (b: Buffer): Promise<void> => {
    hash.update(b);
    if (!out.write(b)) await once(out, 'drain');
  };
  await put(header);
  for (let left = bytes; left > 0; left -= block.length) await put(left >= block.length ? block : block.subarray(0, left));
  const pad = (512 - (bytes % 512)) % 512;
  await put(Buffer.alloc(pad + 1024));
  out.end();
  await once(out, 'finish');
  const layerSize = 512 + bytes + pad + 1024;
  const layer = 'sha256:' + hash.digest('hex');
  await run('mv', [tmp, path.join(layout, 'blobs', 'sha256', layer.slice(7))]);
  const writeBlob = (content: string): { digest: string; size: number } => {
    const digest = 'sha256:' + createHash('sha256').update(content).digest('hex');
    fs.writeFileSync(path.join(layout, 'blobs', 'sha256', digest.slice(7)), content);
    return { digest, size: Buffer.byteLength(content) };
  };
  const config = writeBlob(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer] }, config: {} }));
  const manifest = writeBlob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: layerSize }],
    }),
  );
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'big' } }],
    }),
  );
  return { ref: `oci:${layout}:big`, digest: manifest.digest, layer };
}
