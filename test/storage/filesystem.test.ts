import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { PathNotFoundError } from '../../src/storage/driver.js';
import { onDisk, runFilesystemConformance } from './filesystem-conformance.js';

runFilesystemConformance('filesystem', (root) => new FilesystemDriver({ rootdirectory: root }), 64 * 1024 * 1024);

describe('filesystem driver specifics', () => {
  let base: string;
  let root: string;
  let driver: FilesystemDriver;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'wharf-fs-x-'));
    root = join(base, 'root');
    driver = new FilesystemDriver({ rootdirectory: root });
  });

  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('putContent is atomic: no temp files remain on disk, after single or concurrent puts', async () => {
    await driver.putContent('/atomic/link', Buffer.from('first'));
    await driver.putContent('/atomic/link', Buffer.from('second'));
    assert.deepEqual(await onDisk(join(root, 'atomic')), ['link']);
    await Promise.all(Array.from({ length: 20 }, (_, i) => driver.putContent('/atomic/link', Buffer.alloc(10_000 + i, i))));
    assert.deepEqual(await onDisk(join(root, 'atomic')), ['link']);
    const final = await readFile(join(root, 'atomic', 'link'));
    assert.ok(final.every((b) => b === final[0]) && final.length === 10_000 + final[0]);
    await driver.delete('/atomic');
  });

  it('a failed putContent throws and leaves no temp file behind', async () => {
    await driver.putContent('/fail/target/child', Buffer.from('x')); // target is a non-empty directory
    await assert.rejects(() => driver.putContent('/fail/target', Buffer.from('cannot replace a directory')));
    assert.deepEqual(await onDisk(join(root, 'fail')), ['target', join('target', 'child')]);
    await driver.delete('/fail');
  });

  it('delete removes the tree from disk, leaving siblings with a common prefix', async () => {
    await driver.putContent('/del/a/b/c', Buffer.from('x'));
    await driver.putContent('/del/a/bc', Buffer.from('y'));
    await driver.delete('/del/a/b');
    assert.deepEqual(await onDisk(join(root, 'del')), ['a', join('a', 'bc')]);
    await driver.delete('/del');
    assert.deepEqual(await onDisk(root), []);
  });

  it('an upload resumes across a restart (a new driver on the same root)', async () => {
    const path = '/docker/registry/v2/repositories/r/_uploads/u/data';
    const first = randomBytes(100_000);
    const second = randomBytes(5 * 1024 * 1024 + 3);
    const w1 = await driver.writer(path, false);
    await w1.write(first);
    await w1.close();

    const restarted = new FilesystemDriver({ rootdirectory: root });
    const w2 = await restarted.writer(path, true);
    assert.equal(w2.size, first.length);
    await w2.write(second);
    await w2.commit();
    await w2.close();
    assert.ok((await readFile(join(root, path))).equals(Buffer.concat([first, second])));
    await restarted.delete('/docker');
  });

  it('reads what another process (registry:2) wrote into the layout', async () => {
    const dir = join(root, 'docker', 'registry', 'v2', 'repositories', 'lib', 'app', '_layers', 'sha256', 'ab12');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'link'), 'sha256:ab12');
    const p = '/docker/registry/v2/repositories/lib/app/_layers/sha256/ab12/link';
    assert.equal((await driver.getContent(p)).toString(), 'sha256:ab12');
    assert.deepEqual(await driver.list('/docker/registry/v2/repositories/lib/app/_layers/sha256'), [
      '/docker/registry/v2/repositories/lib/app/_layers/sha256/ab12',
    ]);
    await driver.delete('/docker');
  });

  it('list and walk hide entries no valid path can name (temp files, lost+found)', async () => {
    await driver.putContent('/hide/real', Buffer.from('x'));
    await writeFile(join(root, 'hide', 'real~tmp~0123456789ab'), 'partial');
    await mkdir(join(root, 'hide', 'lost+found'));
    assert.deepEqual(await driver.list('/hide'), ['/hide/real']);
    const walked: string[] = [];
    await driver.walk('/hide', (info) => {
      walked.push(info.path);
    });
    assert.deepEqual(walked, ['/hide/real']);
    await driver.delete('/hide');
    await assert.rejects(() => driver.stat('/hide'), PathNotFoundError);
  });

  it('readers stream in 1 MiB chunks', async () => {
    await driver.putContent('/chunks/f', randomBytes(3 * 1024 * 1024));
    const stream = await driver.reader('/chunks/f');
    const sizes: number[] = [];
    for await (const chunk of stream) sizes.push((chunk as Buffer).length);
    assert.deepEqual(sizes, [1024 * 1024, 1024 * 1024, 1024 * 1024]);
    await driver.delete('/chunks');
  });
});
