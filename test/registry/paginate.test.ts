// paginate(): `n` and `last` over a sorted list, as tags/list and _catalog use it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { paginate } from '../../src/registry/registry.js';

const items = ['a', 'b', 'c', 'd', 'e'];

describe('paginate', () => {
  it('everything when n is undefined', () => {
    assert.deepEqual(paginate(items, undefined, undefined), { items, next: null });
  });
  it('n smaller than the list → a page and the last item as next', () => {
    assert.deepEqual(paginate(items, 2, undefined), { items: ['a', 'b'], next: 'b' });
    assert.deepEqual(paginate(items, 2, 'b'), { items: ['c', 'd'], next: 'd' });
    assert.deepEqual(paginate(items, 2, 'd'), { items: ['e'], next: null });
  });
  it('n equal to what is left → no next', () => {
    assert.deepEqual(paginate(items, 5, undefined), { items, next: null });
    assert.deepEqual(paginate(items, 3, 'b'), { items: ['c', 'd', 'e'], next: null });
  });
  it('n = 0 → nothing, and no next (no Link to loop on)', () => {
    assert.deepEqual(paginate(items, 0, undefined), { items: [], next: null });
  });
  it('last is compared lexically, whether or not it is in the list', () => {
    assert.deepEqual(paginate(items, undefined, 'bb'), { items: ['c', 'd', 'e'], next: null });
    assert.deepEqual(paginate(items, undefined, '0'), { items, next: null });
    assert.deepEqual(paginate(items, undefined, 'z'), { items: [], next: null });
    assert.deepEqual(paginate(items, undefined, 'e'), { items: [], next: null });
    assert.deepEqual(paginate(items, undefined, ''), { items, next: null });
  });
  it('empty list', () => {
    assert.deepEqual(paginate([], 3, undefined), { items: [], next: null });
    assert.deepEqual(paginate([], undefined, 'x'), { items: [], next: null });
  });
  it('walking with next visits every item exactly once', () => {
    const many = Array.from({ length: 23 }, (_, i) => `t${String(i).padStart(2, '0')}`);
    for (const n of [1, 2, 5, 22, 23, 50]) {
      const seen: string[] = [];
      let last: string | undefined;
      for (let guard = 0; guard < 100; guard++) {
        const page = paginate(many, n, last);
        seen.push(...page.items);
        if (page.next === null) break;
        last = page.next;
      }
      assert.deepEqual(seen, many, `n=${n}`);
    }
  });
});
