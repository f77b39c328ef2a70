// Delivery against real HTTP endpoints on 127.0.0.1 that fail, recover, go down, hang or filter:
// retries keep the order and the ids, Distribution's threshold/backoff paces them, a hanging
// endpoint slows neither requests nor the other endpoints, and filters and `disabled` hold.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OCI_MANIFEST, pushImage, request } from '../server/helpers.js';
import { endpoint, queuedBatches, startNotifying } from './helpers.js';
import { startReceiver, type Receiver } from './receiver.js';

/** Ids in the order first attempted (each id once). */
function firstAttemptOrder(r: Receiver): string[] {
  return [...new Set(r.attempted.map((e) => e.id))];
}

describe('notification delivery', { timeout: 120_000 }, () => {
  test('an endpoint answering 500 then recovering gets every event after recovery, in order, with the ids it was first offered', async () => {
    const receiver = await startReceiver((n) => (n < 5 ? 500 : 200));
    const server = await startNotifying({ endpoints: [endpoint(receiver.url, { threshold: 3, backoff: 1000 })] });
    try {
      const image = await pushImage(server, 'retry/app', 'v1');
      await receiver.waitFor(() => receiver.accepted.length === 3, '3 accepted events');
      const attempts = receiver.requests;
      assert.deepEqual(attempts.slice(0, 5).map((r) => r.status), [500, 500, 500, 500, 500]);
      // All five failures offered the first event again, with its id.
      assert.equal(new Set(attempts.slice(0, 6).map((r) => r.envelope!.events[0].id)).size, 1);
      assert.deepEqual(receiver.accepted.map((e) => e.id), firstAttemptOrder(receiver));
      assert.deepEqual(receiver.accepted.map((e) => e.target.digest), [image.configDigest, image.layerDigest, image.digest]);
      // Threshold 3: the first three attempts follow each other at once; then one per 1 s backoff.
      const gaps = attempts.slice(1, 6).map((r, i) => r.at - attempts[i]!.at);
      assert.ok(gaps[0]! < 600 && gaps[1]! < 600, `immediate retries below the threshold: ${gaps}`);
      for (const g of gaps.slice(2)) assert.ok(g >= 950, `backoff between attempts past the threshold: ${gaps}`);
      const stats = server.started.notifier!.stats().endpoints[0]!;
      assert.deepEqual([stats.delivered, stats.failures, stats.pending], [3, 5, 0]);
      assert.deepEqual(stats.statuses, { '500 Internal Server Error': 5, '200 OK': 3 });
      await waitNoBatches(server.dir);
    } finally {
      await server.close();
      await receiver.stop();
    }
  });

  test('an endpoint that is down (connection refused) gets the queued events in order once it is back on its port', async () => {
    const receiver = await startReceiver();
    await receiver.stop();
    const server = await startNotifying({ endpoints: [endpoint(receiver.url, { threshold: 2, backoff: 200 })] });
    try {
      const first = await pushImage(server, 'down/app', 'v1');
      const second = await pushImage(server, 'down/app', 'v2');
      const queued = queuedBatches(server.dir).flatMap((b) => b.ids);
      assert.equal(queued.length, 6, 'every event is in storage before the pushes return');
      await new Promise((r) => setTimeout(r, 500));
      const stats = server.started.notifier!.stats().endpoints[0]!;
      assert.equal(stats.pending, 6);
      assert.ok(stats.errors >= 2, `connection errors counted: ${JSON.stringify(stats)}`);
      await receiver.start();
      await receiver.waitFor(() => receiver.accepted.length === 6, '6 events after recovery');
      assert.deepEqual(receiver.accepted.map((e) => e.id), queued);
      assert.deepEqual(
        receiver.accepted.map((e) => e.target.digest),
        [first.configDigest, first.layerDigest, first.digest, second.configDigest, second.layerDigest, second.digest],
      );
      await waitNoBatches(server.dir);
    } finally {
      await server.close();
      await receiver.stop();
    }
  });

  test('past the threshold: one attempt per backoff, not more', async () => {
    const receiver = await startReceiver(() => 503);
    const server = await startNotifying({ endpoints: [endpoint(receiver.url, { threshold: 4, backoff: 1000 })] });
    try {
      assert.equal((await request(server, 'DELETE', '/v2/_wharf/repositories/none/here')).status, 404); // no event
      await pushBlobOnly(server);
      await receiver.waitFor(() => receiver.requests.length >= 4, 'the first 4 attempts');
      const t0 = receiver.requests[0]!.at;
      assert.ok(receiver.requests[3]!.at - t0 < 900, 'four attempts at once');
      await new Promise((r) => setTimeout(r, 3300 - (Date.now() - receiver.requests[3]!.at)));
      const n = receiver.requests.length;
      // 3.3 s after the fourth failure at one attempt per second: 3 more (a loaded machine may lag one).
      assert.ok(n >= 6 && n <= 7, `attempts 3.3 s after the fourth: ${n}`);
      for (let i = 4; i < n; i++) {
        const gap = receiver.requests[i]!.at - receiver.requests[i - 1]!.at;
        assert.ok(gap >= 950, `gap ${i}: ${gap} ms`);
      }
    } finally {
      await server.close();
      await receiver.stop();
    }
  });

  test('a hanging endpoint (past its timeout) slows neither pushes nor the other endpoints', async (t) => {
    const baseline = await startNotifying({ endpoints: [] });
    const hung = await startReceiver(() => 'hang');
    const healthy = await startReceiver();
    const server = await startNotifying({
      endpoints: [endpoint(hung.url, { name: 'hung', timeout: 1500, threshold: 2, backoff: 1000 }), endpoint(healthy.url, { name: 'healthy' })],
    });
    try {
      // Pushes to both servers alternate, so a busy machine weighs on both measurements alike.
      const times: Record<'base' | 'hung', number[]> = { base: [], hung: [] };
      const timed = async (s: { port: number }, repo: string, tag: string) => {
        const t = performance.now();
        await pushImage(s, repo, tag);
        return performance.now() - t;
      };
      await timed(baseline, 'warm/up', 'v0');
      for (let i = 0; i < 5; i++) {
        times.base.push(await timed(baseline, 'base/app', `v${i}`));
        times.hung.push(await timed(server, 'hung/app', `v${i}`));
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[2]!;
      const [base, withHung] = [median(times.base), median(times.hung)];
      t.diagnostic(`median push of a 1-layer image: ${base.toFixed(1)} ms without notifications, ${withHung.toFixed(1)} ms with a hung and a healthy endpoint`);
      // Each push is 3 events: waiting on the hung endpoint would take at least 3 × 1.5 s.
      assert.ok(Math.max(...times.hung) < 3000, `slowest push with a hung endpoint: ${Math.max(...times.hung).toFixed(1)} ms`);
      assert.ok(withHung < 2 * base + 100, `median push: ${withHung.toFixed(1)} ms with a hung endpoint vs ${base.toFixed(1)} ms without notifications`);
      await healthy.waitFor(() => healthy.accepted.length === 15, 'the healthy endpoint gets all 15 events', 3000);
      assert.ok(hung.requests.length <= 2, 'the hung endpoint is still on its first event');
      assert.equal(new Set(hung.requests.map((r) => r.envelope!.events[0].id)).size, 1);
      // The attempt is abandoned at the timeout and tried again with the same event.
      await hung.waitFor(() => hung.requests.length >= 2, 'a second attempt after the timeout', 5000);
      const gap = hung.requests[1]!.at - hung.requests[0]!.at;
      assert.ok(gap >= 1400 && gap < 3000, `second attempt ${gap} ms after the first`);
      assert.equal(hung.requests[1]!.envelope!.events[0].id, hung.requests[0]!.envelope!.events[0].id);
    } finally {
      await server.close();
      await baseline.close();
      await hung.stop();
      await healthy.stop();
    }
  });

  test('filters: ignoredmediatypes, ignore.actions alone (no media types), and a disabled endpoint gets nothing', async () => {
    const noManifests = await startReceiver();
    const noPulls = await startReceiver();
    const noBlobs = await startReceiver();
    const disabled = await startReceiver();
    const server = await startNotifying({
      endpoints: [
        endpoint(noManifests.url, { name: 'a', ignoredMediaTypes: [OCI_MANIFEST] }),
        endpoint(noPulls.url, { name: 'b', ignoredActions: ['pull'] }),
        endpoint(noBlobs.url, { name: 'c', ignoredMediaTypes: ['application/octet-stream'], ignoredActions: ['delete'] }),
        endpoint(disabled.url, { name: 'd', disabled: true }),
      ],
    });
    try {
      const image = await pushImage(server, 'filter/app', 'v1');
      assert.equal((await request(server, 'GET', '/v2/filter/app/manifests/v1', { headers: { Accept: OCI_MANIFEST } })).status, 200);
      assert.equal((await request(server, 'GET', `/v2/filter/app/blobs/${image.layerDigest}`)).status, 200);
      assert.equal((await request(server, 'DELETE', '/v2/filter/app/manifests/v1')).status, 202);
      const kinds = (r: Receiver) => r.accepted.map((e) => `${e.action} ${e.target.mediaType ?? e.target.tag}`);
      await noManifests.waitFor(() => noManifests.accepted.length === 4, 'a: 4');
      await noPulls.waitFor(() => noPulls.accepted.length === 4, 'b: 4');
      await noBlobs.waitFor(() => noBlobs.accepted.length === 2, 'c: 2');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(kinds(noManifests), ['push application/octet-stream', 'push application/octet-stream', 'pull application/octet-stream', 'delete v1']);
      assert.deepEqual(kinds(noPulls), ['push application/octet-stream', 'push application/octet-stream', `push ${OCI_MANIFEST}`, 'delete v1']);
      assert.deepEqual(kinds(noBlobs), [`push ${OCI_MANIFEST}`, `pull ${OCI_MANIFEST}`]);
      assert.equal(disabled.requests.length, 0);
      assert.deepEqual(server.started.notifier!.stats().endpoints.map((e) => e.name), ['a', 'b', 'c']);
    } finally {
      await server.close();
      for (const r of [noManifests, noPulls, noBlobs, disabled]) await r.stop();
    }
  });

  test('2xx and 3xx answers count as delivered; 4xx is retried', async () => {
    const receiver = await startReceiver((n) => [400, 302, 204, 200][n] ?? 200);
    const server = await startNotifying({ endpoints: [endpoint(receiver.url)] });
    try {
      await pushImage(server, 'codes/app', 'v1');
      await receiver.waitFor(() => receiver.requests.length === 4, '4 requests');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(receiver.requests.map((r) => r.status), [400, 302, 204, 200]);
      const ids = receiver.requests.map((r) => r.envelope!.events[0].id);
      assert.equal(ids[0], ids[1], 'the event answered 400 is sent again');
      assert.equal(new Set(ids).size, 3);
    } finally {
      await server.close();
      await receiver.stop();
    }
  });

  test('with no enabled endpoint there is no queue at all', async () => {
    const server = await startNotifying({ endpoints: [endpoint('http://127.0.0.1:9/', { disabled: true })] });
    try {
      assert.equal(server.started.notifier, undefined);
      await pushImage(server, 'quiet/app', 'v1');
      assert.deepEqual(queuedBatches(server.dir), []);
    } finally {
      await server.close();
    }
  });
});

async function pushBlobOnly(server: { port: number }): Promise<void> {
  const res = await request(server, 'POST', '/v2/pace/app/blobs/uploads/?digest=sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', { body: '' });
  assert.equal(res.status, 201, res.text);
}

/** Delivered batches leave storage. */
async function waitNoBatches(dir: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (queuedBatches(dir).length > 0) {
    if (Date.now() > deadline) assert.fail(`batches left: ${JSON.stringify(queuedBatches(dir))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
