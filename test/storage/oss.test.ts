import assert from 'node:assert/strict';
import { OssDriver } from '../../src/storage/oss.js';
import { runDriverConformance } from './driver-conformance.js';
import { startFakeOss } from './fake-oss/index.js';

const MiB = 1024 * 1024;

// The shared suite against the fake OSS server (written from OSS's API reference; it checks every
// request's signature), with the smallest chunk size so large files span several parts.
runDriverConformance(
  'oss',
  async () => {
    const oss = await startFakeOss();
    const bucket = oss.createBucket('conformance');
    const driver = OssDriver.fromOptions(oss.options(bucket, { rootdirectory: '/conformance/root', chunksize: 5 * MiB }));
    return {
      driver,
      cleanup: async () => {
        const leaked = oss.openUploads(bucket);
        const refused = oss.log.filter((r) => r.status === 403);
        await oss.stop();
        assert.deepEqual(leaked, [], 'the oss driver left multipart uploads open');
        assert.deepEqual(refused, [], 'every request was signed correctly');
      },
    };
  },
  { largeFileBytes: 24 * MiB },
);
