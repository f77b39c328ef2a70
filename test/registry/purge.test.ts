import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InMemoryDriver } from '../../src/storage/inmemory.js';
import { pathFor } from '../../src/storage/paths.js';
import { purgeUploads } from '../../src/registry/purge.js';

async function upload(driver: InMemoryDriver, name: string, id: string, startedAt: string | null): Promise<void> {
  if (startedAt !== null) await driver.putContent(pathFor({ kind: 'uploadStartedAt', name, id }), Buffer.from(startedAt));
  await driver.putContent(pathFor({ kind: 'uploadData', name, id }), Buffer.from('partial'));
}

async function exists(driver: InMemoryDriver, name: string, id: string): Promise<boolean> {
  return driver.stat(pathFor({ kind: 'uploadDir', name, id })).then(
    () => true,
    () => false,
  );
}

describe('upload purging', () => {
  it('removes uploads older than the cut-off, and those without a start time, in nested repositories', async () => {
    const driver = new InMemoryDriver();
    await upload(driver, 'a', 'old', '2020-01-01T00:00:00Z');
    await upload(driver, 'team/b', 'old2', '2020-01-01T00:00:00Z');
    await upload(driver, 'a', 'new', new Date().toISOString());
    await upload(driver, 'a', 'nostart', null);
    await driver.putContent(pathFor({ kind: 'layerLink', name: 'a', digest: `sha256:${'1'.repeat(64)}` }), Buffer.from('x'));
    const result = await purgeUploads(driver, new Date(Date.now() - 3600_000), false);
    assert.equal(result.purged.length, 3);
    assert.deepEqual(result.errors, []);
    assert.equal(await exists(driver, 'a', 'old'), false);
    assert.equal(await exists(driver, 'team/b', 'old2'), false);
    assert.equal(await exists(driver, 'a', 'nostart'), false);
    assert.equal(await exists(driver, 'a', 'new'), true);
  });

  it('changes nothing on a dry run', async () => {
    const driver = new InMemoryDriver();
    await upload(driver, 'a', 'old', '2020-01-01T00:00:00Z');
    const result = await purgeUploads(driver, new Date(), true);
    assert.equal(result.purged.length, 1);
    assert.equal(await exists(driver, 'a', 'old'), true);
  });
});
