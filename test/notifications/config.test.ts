// Distribution's `notifications` section as `wharf serve` reads it: defaults, the two ways to
// ignore media types merged, durations in ms, disabled endpoints kept (skipped, and logged, at start).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { settingsFromConfig } from '../../src/cli/serve.js';
import { unsupportedFeatures } from '../../src/config/index.js';
import { BASE, parse } from '../config/helpers.js';

describe('notifications configuration', () => {
  test('maps every key of an endpoint, with defaults for what is missing', () => {
    const yaml =
      `${BASE}notifications:\n  events:\n    includereferences: true\n  endpoints:\n` +
      '    - name: full\n      url: https://hooks.example.com/registry\n      headers:\n        Authorization: [Bearer t]\n        X-Two: [a, b]\n' +
      '      timeout: 500ms\n      threshold: 5\n      backoff: 2s\n      ignoredmediatypes: [application/octet-stream]\n' +
      '      ignore:\n        mediatypes: [application/vnd.oci.image.index.v1+json]\n        actions: [pull]\n' +
      '    - name: bare\n      url: http://127.0.0.1:8080/\n' +
      '    - name: off\n      disabled: true\n      url: http://127.0.0.1:9/\n';
    const { config } = parse(yaml);
    assert.deepEqual(unsupportedFeatures(config), [], 'notifications are implemented');
    assert.deepEqual(settingsFromConfig(config).notifications, {
      includeReferences: true,
      endpoints: [
        {
          name: 'full',
          url: 'https://hooks.example.com/registry',
          disabled: false,
          headers: { Authorization: ['Bearer t'], 'X-Two': ['a', 'b'] },
          timeout: 500,
          threshold: 5,
          backoff: 2000,
          ignoredMediaTypes: ['application/octet-stream', 'application/vnd.oci.image.index.v1+json'],
          ignoredActions: ['pull'],
        },
        { name: 'bare', url: 'http://127.0.0.1:8080/', disabled: false, headers: {}, timeout: 1000, threshold: 10, backoff: 1000, ignoredMediaTypes: [], ignoredActions: [] },
        { name: 'off', url: 'http://127.0.0.1:9/', disabled: true, headers: {}, timeout: 1000, threshold: 10, backoff: 1000, ignoredMediaTypes: [], ignoredActions: [] },
      ],
    });
  });

  test('no endpoints: no notifications', () => {
    assert.equal(settingsFromConfig(parse(`${BASE}notifications:\n  events:\n    includereferences: true\n`).config).notifications, undefined);
  });

  test('environment overrides reach the endpoint', () => {
    const { config } = parse(`${BASE}notifications:\n  endpoints:\n    - name: e\n      url: http://127.0.0.1:1/a\n`, {
      REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: 'http://127.0.0.1:2/b',
      REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT: '3s',
    });
    const e = settingsFromConfig(config).notifications!.endpoints[0]!;
    assert.deepEqual([e.url, e.timeout], ['http://127.0.0.1:2/b', 3000]);
  });
});
