import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../src/config/index.js';
import { BASE, errorOf, parse } from './helpers.js';

describe('parseDuration', () => {
  it('reads Go duration strings as milliseconds', () => {
    assert.equal(parseDuration('5s'), 5000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('300ms'), 300);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('.5s'), 500);
    assert.equal(parseDuration('-2m'), -120_000);
    assert.equal(parseDuration('+1s'), 1000);
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration('1500us'), 1.5);
    assert.equal(parseDuration('2µs'), 0.002);
    assert.equal(parseDuration('1000000ns'), 1);
    assert.equal(parseDuration('168h'), 604_800_000);
  });

  it('reads a bare integer as nanoseconds', () => {
    assert.equal(parseDuration(5_000_000_000), 5000);
    assert.equal(parseDuration(0), 0);
  });

  it('rejects what Go rejects', () => {
    for (const bad of ['', '5', '1h5', 'h', '1d', '1.s.', 'abc', '5 s', '-', '.s']) {
      assert.throws(() => parseDuration(bad), Error, bad);
    }
    assert.throws(() => parseDuration(1.5));
  });

  it('formats milliseconds back', () => {
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(300), '300ms');
  });

  it('is how configuration durations are read, strings or nanoseconds', () => {
    const { config } = parse(`${BASE}http:\n  draintimeout: 2000000000\nredis:\n  dialtimeout: 250ms\n`);
    assert.equal(config.http.draintimeout, 2000);
    assert.equal(config.redis.dialtimeout, 250);
    assert.match(errorOf(() => parse(`${BASE}http:\n  draintimeout: "10"\n`)), /http\.draintimeout \(REGISTRY_HTTP_DRAINTIMEOUT\): expected a duration .*, got "10"/);
  });
});
