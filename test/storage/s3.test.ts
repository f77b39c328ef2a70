import assert from 'node:assert/strict';
import { S3Driver } from '../../src/storage/s3.js';
import { runDriverConformance } from './driver-conformance.js';
import { openUploads, startRgw } from './rgw.js';

const MiB = 1024 * 1024;

// The shared suite against Ceph RGW, with the smallest part size so large files span many parts.
runDriverConformance(
  's3',
  async () => {
    const rgw = await startRgw();
    const bucket = await rgw.createBucket('conformance');
    const driver = S3Driver.fromOptions(rgw.options(bucket, { rootdirectory: '/conformance/root', chunksize: 5 * MiB }));
    return {
      driver,
      cleanup: async () => {
        const leaked = await openUploads(rgw, bucket);
        await rgw.removeBucket(bucket);
        assert.deepEqual(leaked, [], 'the s3 driver left multipart uploads open');
      },
    };
  },
  { largeFileBytes: 24 * MiB },
);
