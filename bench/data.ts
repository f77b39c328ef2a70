// Deterministic, cheap test data: a seeded xorshift PRNG fills buffers; large streams are
// a reused 16 MiB block repeated (the digest is computed once up front and reused).

import { createHash } from 'node:crypto';

export const MiB = 1024 * 1024;
export const CHUNK = 16 * MiB;

/** Fill a buffer with pseudo-random bytes from a 32-bit seed (xorshift128, fast enough: ~1 GB/s). */
export function fillRandom(buf: Buffer, seed: number): Buffer {
  let x = (seed ^ 0x9e3779b9) >>> 0 || 1;
  let y = 362436069;
  let z = 521288629;
  let w = (88675123 ^ Math.imul(seed, 0x85ebca6b)) >>> 0;
  const words = buf.length >>> 2;
  const u32 = new Uint32Array(buf.buffer, buf.byteOffset, words);
  for (let i = 0; i < words; i++) {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    u32[i] = w;
  }
  for (let i = words * 4; i < buf.length; i++) buf[i] = (i * 131 + seed) & 0xff;
  return buf;
}

export function randomBuffer(size: number, seed: number): Buffer {
  // Allocate 4-aligned backing storage so Uint32Array view is legal.
  const backing = Buffer.alloc(Math.ceil(size / 4) * 4);
  fillRandom(backing, seed);
  return backing.subarray(0, size);
}

export function sha256(buf: Buffer): string {
  return 'sha256:' + createHash('sha256').update(buf).digest('hex');
}

/** A large blob described as `size` bytes made by repeating `block` (last piece truncated). */
export interface BigBlob {
  size: number;
  block: Buffer;
  digest: string;
}

export function makeBigBlob(size: number, seed: number): BigBlob {
  const block = randomBuffer(CHUNK, seed);
  const h = createHash('sha256');
  for (let off = 0; off < size; off += block.length) h.update(block.subarray(0, Math.min(block.length, size - off)));
  return { size, block, digest: 'sha256:' + h.digest('hex') };
}

/** Pieces of a big blob between [start, end) as subarrays of the shared block (no copies). */
export function* pieces(blob: BigBlob, start: number, end: number): Generator<Buffer> {
  const n = blob.block.length;
  let off = start;
  while (off < end) {
    const inBlock = off % n;
    const len = Math.min(n - inBlock, end - off);
    yield blob.block.subarray(inBlock, inBlock + len);
    off += len;
  }
}

export interface SmallBlob {
  data: Buffer;
  digest: string;
}

/** `count` distinct random blobs of `size` bytes; one PRNG pass, then slices. */
export function makeSmallBlobs(count: number, size: number, seed: number): SmallBlob[] {
  const all = randomBuffer(count * size, seed);
  const out: SmallBlob[] = [];
  for (let i = 0; i < count; i++) {
    const data = all.subarray(i * size, (i + 1) * size);
    out.push({ data, digest: sha256(data) });
  }
  return out;
}

/** A minimal ustar archive holding regular files (for `umoci raw add-layer`). */
export function tarArchive(files: { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const h = Buffer.alloc(512);
    h.write(f.name, 0, 100, 'utf8');
    h.write('0000644\0', 100, 'ascii'); // mode
    h.write('0000000\0', 108, 'ascii'); // uid
    h.write('0000000\0', 116, 'ascii'); // gid
    h.write(f.data.length.toString(8).padStart(11, '0') + '\0', 124, 'ascii'); // size
    h.write('00000000000\0', 136, 'ascii'); // mtime: epoch (deterministic)
    h.write('        ', 148, 'ascii'); // checksum placeholder
    h.write('0', 156, 'ascii'); // typeflag: regular file
    h.write('ustar\0', 257, 'ascii');
    h.write('00', 263, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    parts.push(h, f.data);
    const pad = (512 - (f.data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** An OCI image manifest (plus its config) referencing the given layers. */
export function imageManifest(layers: SmallBlob[], seed: number): { config: SmallBlob; manifest: Buffer; mediaType: string } {
  const configJson = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { 'wharf.bench.seed': String(seed) } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }),
  );
  const config = { data: configJson, digest: sha256(configJson) };
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.data.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.data.length })),
    }),
  );
  return { config, manifest, mediaType };
}
