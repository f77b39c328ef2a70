import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapLimit, TaskPool } from '../../src/registry/concurrency.js';

describe('mapLimit', () => {
  it('keeps input order and never runs more than the limit', async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0], 2, async (ms) => {
      most = Math.max(most, ++running);
      await sleep(ms);
      running--;
      return ms * 10;
    });
    assert.deepEqual(out, [50, 10, 40, 20, 30, 0]);
    assert.equal(most, 2);
  });
});

describe('TaskPool', () => {
  it('starts tasks as they are added, at most `limit` at once, and drain waits for all', async () => {
    const pool = new TaskPool(3);
    let running = 0;
    let most = 0;
    const done: number[] = [];
    const task = (i: number) => async () => {
      most = Math.max(most, ++running);
      await sleep(i % 4);
      running--;
      done.push(i);
    };
    for (let i = 0; i < 20; i++) {
      pool.add(task(i));
      if (i === 0) assert.equal(running, 1, 'the first task started when it was added');
    }
    await pool.drain();
    assert.equal(most, 3);
    assert.deepEqual([...done].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
    assert.equal(running, 0);
  });

  it('drain of an empty pool returns at once', async () => {
    await new TaskPool(4).drain();
  });

  it('after a failure starts nothing more, lets running tasks finish, and drain throws the first error', async () => {
    const pool = new TaskPool(2);
    const started: number[] = [];
    const finished: number[] = [];
    for (let i = 0; i < 10; i++) {
      pool.add(async () => {
        started.push(i);
        await sleep(i === 0 ? 1 : 20);
        if (i === 0) throw new Error('first');
        if (i === 2) throw new Error('second');
        finished.push(i);
      });
    }
    await assert.rejects(() => pool.drain(), /first/);
    // 0 fails while 1 runs: 2 starts neither before nor after; 1 is waited for.
    assert.deepEqual(started, [0, 1]);
    assert.deepEqual(finished, [1]);
    pool.add(async () => assert.fail('no task starts after a failure'));
    await assert.rejects(() => pool.drain(), /first/);
  });

  it('a task that throws synchronously counts as a failure', async () => {
    const pool = new TaskPool(2);
    pool.add(() => {
      throw new Error('sync');
    });
    await assert.rejects(() => pool.drain(), /sync/);
  });
});
