import assert from 'node:assert/strict';
import { GcsDriver } from '../../src/storage/gcs.js';
import { runDriverConformance } from './driver-conformance.js';
import { startFakeGcs } from './gcs-fake.js';

const MiB = 1024 * 1024;

// The shared suite on the fake Cloud Storage server (test/storage/fake-gcs: a fake written from
// Google's API documents, checking tokens and signatures), with 1 MiB chunks so files span many
// resumable-upload chunks, and Distribution's naming without a rootdirectory.
runDriverConformance(
  'gcs',
  async () => {
    const gcs = await startFakeGcs();
    const bucket = gcs.createBucket('conformance');
    const driver = GcsDriver.fromOptions(gcs.options(bucket, { chunksize: MiB }), {}, gcs.env);
    return {
      driver,
      cleanup: async () => {
        const left = gcs.fake.store.names(bucket);
        await gcs.stop();
        assert.deepEqual(left, [], 'the gcs driver left objects behind');
      },
    };
  },
  { largeFileBytes: 16 * MiB },
);
