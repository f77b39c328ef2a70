/**
 * Part-size arithmetic for the s3 driver (the oss driver's writer, under the same limits, uses it
 * too). S3 (and Ceph RGW) allow at most 10,000 parts per
 * multipart upload, each at least 5 MiB (but the last) and at most 5 GiB. A writer does not
 * know how large the blob will be, so part sizes grow with the part number: the configured
 * `chunksize` for the first 5,000 parts (about 49 GiB at the 10 MiB default), then doubling
 * every 500 parts up to 5 GiB. With the default chunk size 10,000 parts hold about 7.5 TiB,
 * more than S3's 5 TiB object limit; with the smallest (5 MiB) about 5 TiB.
 * The price of growth is memory: a part is gathered in memory before it is sent, so a
 * writer past ~50 GiB holds parts of 20 MiB, 40 MiB, ... (only for such huge blobs).
 */

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * GiB;
export const MAX_PARTS = 10_000;
/** Parts up to this number have the configured chunk size. */
export const GROW_AFTER_PART = 5_000;
/** After GROW_AFTER_PART, the part size doubles every this many parts. */
export const GROW_EVERY_PARTS = 500;

/** The size of part `partNumber` (1-based) for a writer configured with `chunkSize`. */
export function partSizeFor(partNumber: number, chunkSize: number): number {
  if (!Number.isSafeInteger(partNumber) || partNumber < 1 || partNumber > MAX_PARTS) {
    throw new RangeError(`s3: part number ${partNumber} is outside 1..${MAX_PARTS}`);
  }
  const base = Math.min(MAX_PART_SIZE, Math.max(MIN_PART_SIZE, chunkSize));
  if (partNumber <= GROW_AFTER_PART) return base;
  const doublings = Math.ceil((partNumber - GROW_AFTER_PART) / GROW_EVERY_PARTS);
  return Math.min(MAX_PART_SIZE, base * 2 ** doublings);
}

/** How many bytes a writer can take before it runs out of part numbers (10,000 full parts). */
export function writerCapacity(chunkSize: number, firstPart = 1): number {
  let total = 0;
  for (let n = firstPart; n <= MAX_PARTS; n++) total += partSizeFor(n, chunkSize);
  return total;
}

/**
 * The part size of a server-side multipart copy of `size` bytes: the configured
 * `multipartcopychunksize`, raised when that would need more than 10,000 parts.
 */
export function copyPartSize(size: number, configured: number): number {
  const needed = Math.ceil(size / MAX_PARTS);
  return Math.min(MAX_PART_SIZE, Math.max(configured, needed, MIN_PART_SIZE));
}

/**
 * Byte ranges [start, end] (inclusive) that split `size` bytes into parts of `partSize`
 * (the last one shorter).
 */
export function copyRanges(size: number, partSize: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (let start = 0; start < size; start += partSize) ranges.push([start, Math.min(size, start + partSize) - 1]);
  return ranges;
}

/**
 * Ranges that carry `size` bytes of an existing object into the first parts of a new
 * multipart upload (UploadPartCopy): as few as possible, each at most 5 GiB and, since
 * more parts follow them, at least 5 MiB. Needs size >= 5 MiB.
 */
export function baseCopyRanges(size: number): Array<[number, number]> {
  if (size < MIN_PART_SIZE) throw new RangeError(`s3: ${size} bytes are too few to copy as a part`);
  return evenRanges(size);
}

/** Ranges [first, last] splitting `size` bytes as evenly as possible into as few parts of at most `maxPart` as will do. */
export function evenRanges(size: number, maxPart = MAX_PART_SIZE): Array<[number, number]> {
  const count = Math.max(1, Math.ceil(size / maxPart));
  const ranges: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    const length = Math.floor(size / count) + (i < size % count ? 1 : 0);
    ranges.push([start, start + length - 1]);
    start += length;
  }
  return ranges;
}
