/** What the two filesystem drivers' tests share: the conformance suite run on a fresh root, checked on disk. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StorageDriver } from '../../src/storage/driver.js';
import { runDriverConformance } from './driver-conformance.js';

/** Every entry below `dir` as seen on disk, hidden ones included; [] if `dir` does not exist. */
export async function onDisk(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true })).map(String).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * The shared driver suite on a root that does not exist yet (the driver must cope until the
 * first write). Stricter than list('/') at the end: nothing at all may be left on disk, not even
 * hidden temp files or doomed trees.
 */
export function runFilesystemConformance(label: string, make: (root: string) => StorageDriver, largeFileBytes: number): void {
  runDriverConformance(
    label,
    async () => {
      const base = await mkdtemp(join(tmpdir(), 'wharf-fs-'));
      const root = join(base, 'root');
      return {
        driver: make(root),
        cleanup: async () => {
          const left = await onDisk(root);
          await rm(base, { recursive: true, force: true });
          assert.deepEqual(left, [], `the ${label} driver left entries on disk`);
        },
      };
    },
    { largeFileBytes },
  );
}
