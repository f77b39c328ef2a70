import assert from 'node:assert/strict';
import type { ContainerClient } from '@azure/storage-blob';
import { AzureDriver } from '../../src/storage/azure.js';
import { runDriverConformance } from './driver-conformance.js';
import { blobNames, startAzurite } from './azurite.js';

const MiB = 1024 * 1024;

// The shared suite against Azurite, with Distribution 2.8's blob naming (no rootdirectory: names
// keep the path's leading '/'), the harder case for listings and copy URLs.
runDriverConformance(
  'azure',
  async () => {
    const azurite = await startAzurite();
    const container: ContainerClient = await azurite.createContainer('conformance');
    const driver = AzureDriver.fromOptions(azurite.options(container.containerName));
    return {
      driver,
      cleanup: async () => {
        const left = await blobNames(container);
        await container.delete();
        assert.deepEqual(left, [], 'the azure driver left blobs behind');
      },
    };
  },
  { largeFileBytes: 24 * MiB },
);
