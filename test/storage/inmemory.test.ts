import { InMemoryDriver } from '../../src/storage/inmemory.js';
import { runDriverConformance } from './driver-conformance.js';

runDriverConformance('inmemory', async () => ({ driver: new InMemoryDriver(), cleanup: async () => undefined }), {
  largeFileBytes: 16 * 1024 * 1024,
});
