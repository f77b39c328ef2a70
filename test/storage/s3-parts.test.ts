import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  baseCopyRanges,
  copyPartSize,
  copyRanges,
  GiB,
  MAX_PART_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  MiB,
  partSizeFor,
  writerCapacity,
} from '../../src/storage/s3-parts.js';
import { parseS3Options } from '../../src/storage/s3-options.js';

const TiB = 1024 * GiB;

describe('s3 part sizes', () => {
  it('parts keep the configured chunk size for the first 5,000 parts, then grow, never past 5 GiB', () => {
    for (const chunk of [MIN_PART_SIZE, 10 * MiB, 64 * MiB, MAX_PART_SIZE]) {
      assert.equal(partSizeFor(1, chunk), chunk);
      assert.equal(partSizeFor(5000, chunk), chunk);
      let previous = 0;
      for (let n = 1; n <= MAX_PARTS; n++) {
        const size = partSizeFor(n, chunk);
        assert.ok(size >= previous, `part sizes never shrink (part ${n})`);
        assert.ok(size >= MIN_PART_SIZE && size <= MAX_PART_SIZE, `part ${n} is within S3's limits`);
        previous = size;
      }
    }
    assert.equal(partSizeFor(5001, 10 * MiB), 20 * MiB);
    assert.equal(partSizeFor(5501, 10 * MiB), 40 * MiB);
    assert.equal(partSizeFor(MAX_PARTS, 10 * MiB), MAX_PART_SIZE);
    assert.throws(() => partSizeFor(0, 10 * MiB), RangeError);
    assert.throws(() => partSizeFor(MAX_PARTS + 1, 10 * MiB), RangeError);
  });

  it('10,000 parts hold layers far beyond 100 GiB (where fixed 10 MiB parts stop at 97.7 GiB)', () => {
    assert.ok(10 * MiB * MAX_PARTS < 100 * GiB, 'fixed default parts would fail on a 100 GiB layer');
    assert.ok(writerCapacity(10 * MiB) > 5 * TiB, `default chunk size: ${writerCapacity(10 * MiB) / TiB} TiB`);
    assert.ok(writerCapacity(MIN_PART_SIZE) > 4 * TiB, `smallest chunk size: ${writerCapacity(MIN_PART_SIZE) / TiB} TiB`);
    // A 150 GiB layer with the smallest chunk size: how many parts does it take?
    let parts = 0;
    for (let bytes = 0; bytes < 150 * GiB; ) bytes += partSizeFor(++parts, MIN_PART_SIZE);
    assert.ok(parts <= MAX_PARTS, `${parts} parts`);
    // A resumed upload whose first parts came from a copy still has room.
    assert.ok(writerCapacity(10 * MiB, 41) > 5 * TiB);
  });

  it('multipart copies stay within 10,000 parts by raising the copy chunk size', () => {
    assert.equal(copyPartSize(100 * MiB, 32 * MiB), 32 * MiB);
    assert.equal(copyPartSize(100 * MiB, 1), MIN_PART_SIZE);
    const huge = 1000 * GiB;
    const part = copyPartSize(huge, 32 * MiB);
    assert.ok(part > 32 * MiB && Math.ceil(huge / part) <= MAX_PARTS);
    assert.equal(copyPartSize(5 * TiB, 32 * MiB), Math.ceil((5 * TiB) / MAX_PARTS));
    const ranges = copyRanges(12 * MiB + 3, 5 * MiB);
    assert.deepEqual(ranges, [
      [0, 5 * MiB - 1],
      [5 * MiB, 10 * MiB - 1],
      [10 * MiB, 12 * MiB + 2],
    ]);
    assert.deepEqual(copyRanges(0, 5 * MiB), []);
  });

  it('an existing object becomes as few parts as possible, each 5 MiB .. 5 GiB, covering every byte', () => {
    assert.deepEqual(baseCopyRanges(MIN_PART_SIZE), [[0, MIN_PART_SIZE - 1]]);
    assert.deepEqual(baseCopyRanges(5 * GiB), [[0, 5 * GiB - 1]]);
    for (const size of [5 * GiB + 1, 12 * GiB + 7, 300 * GiB]) {
      const ranges = baseCopyRanges(size);
      assert.equal(ranges.length, Math.ceil(size / MAX_PART_SIZE));
      let next = 0;
      for (const [first, last] of ranges) {
        assert.equal(first, next);
        const length = last - first + 1;
        assert.ok(length >= MIN_PART_SIZE && length <= MAX_PART_SIZE);
        next = last + 1;
      }
      assert.equal(next, size);
    }
    assert.throws(() => baseCopyRanges(MIN_PART_SIZE - 1), RangeError);
  });
});

describe('s3 parameters', () => {
  const base = { region: 'us-east-1', bucket: 'b' };

  it('copies whole objects up to 5 GiB on an S3-compatible endpoint unless told otherwise; AWS keeps 32 MiB', () => {
    assert.equal(parseS3Options({ ...base, regionendpoint: 'http://127.0.0.1:7480' }).multipartCopyThresholdSize, 5 * 1024 * MiB);
    assert.equal(parseS3Options({ ...base, regionendpoint: 'https://s3.eu-west-1.amazonaws.com' }).multipartCopyThresholdSize, 32 * MiB);
    assert.equal(parseS3Options({ ...base, regionendpoint: 'http://127.0.0.1:7480', multipartcopythresholdsize: 8 * MiB }).multipartCopyThresholdSize, 8 * MiB);
  });

  it("Distribution's defaults", () => {
    const s = parseS3Options(base);
    assert.equal(s.chunkSize, 10 * MiB);
    assert.equal(s.multipartCopyChunkSize, 32 * MiB);
    assert.equal(s.multipartCopyMaxConcurrency, 100);
    assert.equal(s.multipartCopyThresholdSize, 32 * MiB);
    assert.equal(s.secure, true);
    assert.equal(s.v4auth, true);
    assert.equal(s.encrypt, false);
    assert.equal(s.forcePathStyle, false);
    assert.equal(s.storageClass, 'STANDARD');
    assert.equal(s.objectAcl, 'private');
    assert.equal(s.rootDirectory, '');
    assert.equal(s.accessKey, undefined, 'no keys: the default credential chain');
    assert.equal(parseS3Options({ ...base, regionendpoint: 'http://127.0.0.1:7480' }).forcePathStyle, true, 'path style with a regionendpoint, as 2.8');
    assert.equal(parseS3Options({ ...base, regionendpoint: 'http://x', forcepathstyle: false }).forcePathStyle, false);
    assert.equal(parseS3Options({ ...base, storageclass: 'none' }).storageClass, undefined);
    assert.equal(parseS3Options({ ...base, chunksize: '5242880', secure: 'false' }).chunkSize, 5 * MiB);
  });

  it('refuses what Distribution refuses, naming the key', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ bucket: 'b' }, /no region/],
      [{ region: 'r' }, /no bucket/],
      [{ ...base, chunksize: MIN_PART_SIZE - 1 }, /chunksize/],
      [{ ...base, chunksize: 'big' }, /chunksize/],
      [{ ...base, multipartcopychunksize: 6 * GiB }, /multipartcopychunksize/],
      [{ ...base, multipartcopymaxconcurrency: 0 }, /multipartcopymaxconcurrency/],
      [{ ...base, multipartcopythresholdsize: -1 }, /multipartcopythresholdsize/],
      [{ ...base, storageclass: 'GOLD' }, /storageclass/],
      [{ ...base, objectacl: 'everyone' }, /objectacl/],
      [{ ...base, encrypt: 'maybe' }, /encrypt/],
      [{ ...base, accesskey: 'a' }, /accesskey and secretkey/],
      [{ ...base, v4auth: false }, /v4 authentication/],
      [{ ...base, regionendpoint: 'http://x', usedualstack: true }, /usedualstack/],
      [{ ...base, redirectendpoint: 'cdn.example.com' }, /redirectendpoint/],
    ];
    for (const [options, message] of bad) assert.throws(() => parseS3Options(options), message, JSON.stringify(options));
  });

  it('warns about keys it cannot honour instead of ignoring them', () => {
    const warnings: string[] = [];
    const s = parseS3Options({ ...base, regionendpoint: 'http://127.0.0.1:7480', v4auth: false, keyid: 'k', loglevel: 'verbose' }, (m) => warnings.push(m));
    assert.equal(s.v4auth, false);
    assert.equal(warnings.length, 3, warnings.join('\n'));
    assert.match(warnings.join('\n'), /v4auth/);
    assert.match(warnings.join('\n'), /keyid/);
    assert.match(warnings.join('\n'), /loglevel/);
  });
});
