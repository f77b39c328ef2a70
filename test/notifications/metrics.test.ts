// The notifier's numbers reach Prometheus (src/metrics) when metrics are on: events queued by
// action, pending events, delivery statuses and failures, per endpoint.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { startRegistry } from '../../src/cli/start.js';
import { makeSettings, pushImage } from '../server/helpers.js';
import { endpoint } from './helpers.js';
import { startReceiver } from './receiver.js';

test('registry_notifications_* metrics follow the queue and the deliveries', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-notify-metrics-'));
  const receiver = await startReceiver((n) => (n === 0 ? 502 : 200));
  const started = await startRegistry({
    ...makeSettings({ dir }),
    debug: { addr: '127.0.0.1:0', prometheus: { enabled: true, path: '/metrics' } },
    notifications: { includeReferences: false, endpoints: [endpoint(receiver.url, { name: 'prom' })] },
  });
  try {
    await pushImage({ port: started.port }, 'metrics/app', 'v1');
    await receiver.waitFor(() => receiver.accepted.length === 3, '3 events');
    await new Promise((r) => setTimeout(r, 100));
    const text = await (await fetch(`http://127.0.0.1:${started.debugPort}/metrics`)).text();
    const value = (line: RegExp) => Number(text.split('\n').find((l) => line.test(l))?.split(' ').at(-1));
    assert.equal(value(/^registry_notifications_events_total\{.*type="push".*endpoint="prom"|^registry_notifications_events_total\{.*endpoint="prom".*type="push"/), 3, text);
    assert.equal(value(/^registry_notifications_pending\{endpoint="prom"\}/), 0);
    assert.equal(value(/^registry_notifications_status_total\{.*code="200".*endpoint="prom"|^registry_notifications_status_total\{.*endpoint="prom".*code="200"/), 3);
    assert.equal(value(/^registry_notifications_status_total\{.*code="502"|^registry_notifications_status_total\{endpoint="prom",code="502"/), 1);
    assert.equal(value(/^registry_notifications_failures_total\{endpoint="prom"\}/), 1);
  } finally {
    await started.close();
    await receiver.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
