import assert from 'node:assert/strict';
import { SwiftDriver } from '../../src/storage/swift.js';
import { runDriverConformance } from './driver-conformance.js';
import { startRgwSwift } from './rgw-swift.js';

const MiB = 1024 * 1024;

// The shared suite against Ceph RGW's Swift API, with the smallest segment size (1 MiB, as
// Distribution allows) so files written through writers span many segments.
runDriverConformance(
  'swift',
  async () => {
    const rgw = await startRgwSwift();
    const container = rgw.containerName('conformance');
    const driver = await SwiftDriver.connected(rgw.options(container, { prefix: '/conformance/root', chunksize: MiB }));
    return {
      driver,
      cleanup: async () => {
        // Every test deleted what it wrote: no file, and no segment of one, may be left.
        const left = (await rgw.objects(container)).map((o) => o.name);
        await rgw.removeContainer(container);
        assert.deepEqual(left, [], 'the swift driver left objects (files or segments) in the container');
      },
    };
  },
  { largeFileBytes: 16 * MiB },
);
