import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { InMemoryDriver } from '../../src/storage/inmemory.js';
import { pathFor } from '../../src/storage/paths.js';
import { TagStore } from '../../src/registry/tags.js';

const digestA = `sha256:${'a'.repeat(64)}`;
const digestB = `sha256:${'b'.repeat(64)}`;

/** The in-memory driver, each tag-link read slowed a little and counted while in flight. */
class ObservedDriver extends InMemoryDriver {
  inFlight = 0;
  peak = 0;
  override async getContent(path: string): Promise<Buffer> {
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 5));
      return await super.getContent(path);
    } finally {
      this.inFlight--;
    }
  }
}

async function tagged(store: TagStore, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await store.tag('app', `t${i}`, i % 2 === 0 ? digestA : digestB);
}

describe('storage.tag.concurrencylimit', () => {
  it('bounds tag lookups in flight, for listing, finding the tags of a digest, and untagging them', async () => {
    const driver = new ObservedDriver();
    const store = new TagStore(driver, 3);
    await tagged(store, 20);
    driver.peak = 0;
    const tags = await store.list('app');
    assert.equal(tags?.length, 20);
    assert.equal(driver.peak, 3, 'exactly the limit is used, no more');
    driver.peak = 0;
    const ofA = await store.tagsOf('app', digestA);
    assert.deepEqual(ofA, ['t0', 't10', 't12', 't14', 't16', 't18', 't2', 't4', 't6', 't8']);
    assert.equal(driver.peak, 3);
    await store.untagAll('app', ofA);
    assert.deepEqual(await store.tagsOf('app', digestA), []);
    assert.equal((await store.list('app'))?.length, 10);
    assert.equal(await driver.stat(pathFor({ kind: 'tagDir', name: 'app', tag: 't0' })).then(() => true, () => false), false);
  });

  it('0 (the default) means one lookup per CPU, as Distribution', async () => {
    const driver = new ObservedDriver();
    const store = new TagStore(driver, 0);
    assert.equal(store.concurrency, availableParallelism());
    await tagged(store, 20);
    driver.peak = 0;
    await store.list('app');
    assert.equal(driver.peak, Math.min(20, availableParallelism()));
  });
});
