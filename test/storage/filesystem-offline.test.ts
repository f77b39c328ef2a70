import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DRIVERS } from '../../src/storage/drivers.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { OfflineFilesystemDriver } from '../../src/storage/filesystem-offline.js';
import { PathNotFoundError } from '../../src/storage/driver.js';
import { onDisk, runFilesystemConformance } from './filesystem-conformance.js';

runFilesystemConformance('filesystem (offline)', (root) => new OfflineFilesystemDriver({ rootdirectory: root }), 16 * 1024 * 1024);

describe('offline filesystem driver specifics', () => {
  let base: string;
  let root: string;
  let driver: OfflineFilesystemDriver;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'wharf-fs-offline-x-'));
    root = join(base, 'root');
    driver = new OfflineFilesystemDriver({ rootdirectory: root });
  });

  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('is what the filesystem factory gives an offline command, and only it', async () => {
    assert.ok((await DRIVERS.filesystem!({ rootdirectory: root }, { offline: true })) instanceof OfflineFilesystemDriver);
    const served = await DRIVERS.filesystem!({ rootdirectory: root });
    assert.ok(served instanceof FilesystemDriver && !(served instanceof OfflineFilesystemDriver));
  });

  it('deletes a deep tree in place, without leaving renamed leftovers, and never follows a symlink', async () => {
    const outside = join(base, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'keep'), 'not ours');
    for (let i = 0; i < 50; i++) await driver.putContent(`/tree/d${i % 5}/sub${i % 3}/f${i}`, Buffer.from(`${i}`));
    await symlink(outside, join(root, 'tree', 'd0', 'link'));
    await driver.putContent('/treeish/f', Buffer.from('sibling with a common prefix'));
    await driver.delete('/tree');
    assert.deepEqual(await onDisk(root), ['treeish', join('treeish', 'f')]);
    assert.deepEqual(await onDisk(outside), ['keep']);
    await driver.delete('/treeish');
  });

  it('maps errors as the filesystem driver does', async () => {
    await driver.putContent('/err/file', Buffer.from('x'));
    await assert.rejects(() => driver.delete('/err/missing'), PathNotFoundError);
    await assert.rejects(() => driver.delete('/err/file/below'), PathNotFoundError);
    await assert.rejects(() => driver.getContent('/err'), PathNotFoundError); // a directory
    await assert.rejects(() => driver.getContent('/err/file/below'), PathNotFoundError);
    await assert.rejects(() => driver.stat('/err/file/below'), PathNotFoundError);
    await assert.rejects(() => driver.list('/err/file'), PathNotFoundError);
    await driver.delete('/err/file');
    await driver.delete('/err');
  });

  it('lets the event loop turn during a long run of synchronous calls', async () => {
    for (let i = 0; i < 200; i++) await driver.putContent(`/turns/f${String(i).padStart(3, '0')}`, Buffer.alloc(1000, i));
    let immediates = 0;
    let stop = false;
    const tick = (): void => {
      immediates++;
      if (!stop) setImmediate(tick);
    };
    setImmediate(tick);
    const started = performance.now();
    let calls = 0;
    // 20 callers at once, as garbage collection reads, for at least 100 ms.
    await Promise.all(
      Array.from({ length: 20 }, async (_, w) => {
        while (performance.now() - started < 100) {
          await driver.getContent(`/turns/f${String((calls++ + w) % 200).padStart(3, '0')}`);
          await driver.stat('/turns/f000');
        }
      }),
    );
    stop = true;
    // Without turns the immediates would run once, after all the reads; with a turn every 2 ms, dozens of times.
    assert.ok(immediates >= 10, `the event loop turned ${immediates} times in ${calls} reads`);
    await driver.delete('/turns');
  });
});
