// The OCI name, tag and digest grammar (src/registry/names.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError } from '../../src/registry/errors.js';
import { algorithmOf, checkDigest, checkName, digestProblem, isDigest, isTag, isValidName, MAX_NAME_LENGTH } from '../../src/registry/names.js';

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    assert.ok(err instanceof RegistryError, String(err));
    return err.code;
  }
}

describe('repository names', () => {
  const valid = ['a', 'library/ubuntu', 'a.b', 'a_b', 'a__b', 'a-b', 'a---b', 'a/b/c/d/e', '0', 'x9/y-8.z_7', 'localhost/foo'];
  const invalid = [
    '', 'A', 'library/Ubuntu', '/a', 'a/', 'a//b', '.a', 'a.', '_a', 'a_', '-a', 'a-', 'a..b', 'a___b', 'a._b', 'a/./b', 'a/../b', '..',
    'a b', 'a%2Fb', 'a\u0000b', 'a:b', 'a@b', 'ä', 'a\nb',
  ];
  for (const n of valid) it(`accepts ${JSON.stringify(n)}`, () => {
    assert.equal(isValidName(n), true);
    assert.equal(codeOf(() => checkName(n)), null);
  });
  for (const n of invalid) it(`refuses ${JSON.stringify(n)} with NAME_INVALID`, () => {
    assert.equal(isValidName(n), false);
    assert.equal(codeOf(() => checkName(n)), 'NAME_INVALID');
  });
  it(`the length limit is ${MAX_NAME_LENGTH} characters`, () => {
    assert.equal(MAX_NAME_LENGTH, 255);
    const ok = `${'a'.repeat(127)}/${'b'.repeat(127)}`;
    assert.equal(isValidName(ok), true);
    assert.equal(isValidName(`${ok}b`), false);
    assert.equal(codeOf(() => checkName(`${ok}b`)), 'NAME_INVALID');
    assert.equal(codeOf(() => checkName('a'.repeat(10_000))), 'NAME_INVALID');
  });
  it('NAME_INVALID is a 400', () => {
    try {
      checkName('Bad');
    } catch (err) {
      assert.equal((err as RegistryError).status, 400);
    }
  });
});

describe('tags', () => {
  for (const t of ['latest', 'v1.0.0', '_x', 'A-b_c.d', '0', 'a'.repeat(128)]) it(`accepts ${t.slice(0, 20)}`, () => assert.equal(isTag(t), true));
  for (const t of ['', '-a', '.a', 'a/b', 'a:b', 'a b', 'a'.repeat(129), 'ü', 'a\u0000']) {
    it(`refuses ${JSON.stringify(t.slice(0, 20))}`, () => assert.equal(isTag(t), false));
  }
});

describe('digests', () => {
  const hex64 = 'a'.repeat(64);
  it('accepts sha256, sha384 and sha512 with lowercase hex of the right length', () => {
    assert.equal(digestProblem(`sha256:${hex64}`), null);
    assert.equal(digestProblem(`sha384:${'0'.repeat(96)}`), null);
    assert.equal(digestProblem(`sha512:${'f'.repeat(128)}`), null);
    assert.equal(checkDigest(`sha256:${hex64}`), `sha256:${hex64}`);
  });
  const bad: [string, RegExp][] = [
    [`sha256:${'a'.repeat(63)}`, /64/],
    [`sha256:${'a'.repeat(65)}`, /64/],
    [`sha256:${'A'.repeat(64)}`, /lowercase/],
    [`sha256:${'g'.repeat(64)}`, /hex/],
    [`sha512:${hex64}`, /128/],
    [`md5:${'a'.repeat(32)}`, /unsupported/],
    [`blake3:${hex64}`, /unsupported/],
    [hex64, /format/],
    ['sha256:', /format/],
    [`:${hex64}`, /format/],
    [`SHA256:${hex64}`, /format/],
    [`sha256:${hex64}\n`, /format/],
    [`sha256::${hex64}`, /format/],
  ];
  for (const [d, why] of bad) {
    it(`refuses ${JSON.stringify(d.slice(0, 24))} with DIGEST_INVALID`, () => {
      assert.match(String(digestProblem(d)), why);
      assert.equal(codeOf(() => checkDigest(d)), 'DIGEST_INVALID');
    });
  }
  it('isDigest tells references apart by the colon; algorithmOf splits', () => {
    assert.equal(isDigest(`sha256:${hex64}`), true);
    assert.equal(isDigest('latest'), false);
    assert.equal(algorithmOf(`sha512:${'f'.repeat(128)}`), 'sha512');
  });
});
