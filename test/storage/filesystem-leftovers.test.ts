// What a crash leaves on disk (a putContent's temp file, a tree a delete had hidden but not yet
// removed) is cleared by later listings, so a garbage collection reclaims that space too.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { markAndSweep } from '../../src/gc/mark-sweep.js';
import type { StorageDriver } from '../../src/storage/driver.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { OfflineFilesystemDriver } from '../../src/storage/filesystem-offline.js';
import { pathFor } from '../../src/storage/paths.js';

const base = mkdtempSync(join(tmpdir(), 'wharf-fs-leftovers-'));
after(() => rmSync(base, { recursive: true, force: true }));

const TWO_HOURS_AGO = new Date(Date.now() - 2 * 3600_000);

/** The debris a kill -9 can leave in `dir`; returns their paths. */
function debris(dir: string) {
  mkdirSync(dir, { recursive: true });
  const doomedTree = join(dir, 'blobdir~deleting~0123456789ab');
  mkdirSync(join(doomedTree, 'deeper'), { recursive: true });
  writeFileSync(join(doomedTree, 'deeper', 'data'), Buffer.alloc(4096, 1));
  utimesSync(doomedTree, new Date(), new Date()); // a fresh rename: still swept, nobody can reach it
  const oldTemp = join(dir, 'link~tmp~abcdef012345');
  writeFileSync(oldTemp, 'sha256:half');
  utimesSync(oldTemp, TWO_HOURS_AGO, TWO_HOURS_AGO);
  const freshTemp = join(dir, 'link~tmp~fedcba987654'); // may be a putContent in progress
  writeFileSync(freshTemp, 'sha256:new');
  const lookalike = join(dir, 'notes~tmp~short'); // not a name the driver makes
  writeFileSync(lookalike, 'x');
  utimesSync(lookalike, TWO_HOURS_AGO, TWO_HOURS_AGO);
  return { doomedTree, oldTemp, freshTemp, lookalike };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await sleep(10);
  assert.ok(cond(), what);
}

const drivers: [string, (root: string) => StorageDriver][] = [
  ['filesystem', (root) => new FilesystemDriver({ rootdirectory: root })],
  ['filesystem (offline)', (root) => new OfflineFilesystemDriver({ rootdirectory: root })],
];

describe('filesystem drivers clear a crash’s leftovers when they list', () => {
  for (const [label, make] of drivers) {
    it(`${label}: a listing removes doomed trees and old temp files, and lists none of them`, async () => {
      const root = join(base, label.replace(/\W+/g, '-'));
      const driver = make(root);
      await driver.putContent('/repo/kept', Buffer.from('kept'));
      const d = debris(join(root, 'repo'));
      assert.deepEqual(await driver.list('/repo'), ['/repo/kept']);
      await until(() => !existsSync(d.doomedTree) && !existsSync(d.oldTemp), 'the doomed tree and the old temp file are removed');
      assert.ok(existsSync(d.freshTemp), 'a temp file younger than an hour stays');
      assert.ok(existsSync(d.lookalike), 'a name the driver never makes stays');
      assert.equal((await driver.getContent('/repo/kept')).toString(), 'kept');
    });
  }

  it('garbage collection reclaims what a crash left among the blobs', async () => {
    const root = join(base, 'gc');
    const driver = new OfflineFilesystemDriver({ rootdirectory: root });
    const digest = `sha256:${'ab'.repeat(32)}`;
    await driver.putContent(pathFor({ kind: 'blobData', digest }), Buffer.from('orphan'));
    const prefixDir = join(root, pathFor({ kind: 'blobDir', digest }), '..');
    const d = debris(prefixDir);
    const result = await markAndSweep(driver, { dryRun: false, removeUntagged: false });
    assert.deepEqual(result.blobsDeleted, [digest]);
    await until(() => !existsSync(d.doomedTree) && !existsSync(d.oldTemp), 'the crash debris among the blobs is gone');
  });
});
