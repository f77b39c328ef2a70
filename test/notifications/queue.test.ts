// The durable queue: events are in storage before enqueue resolves (and so before the response),
// concurrent requests share writes, large groups are split, storage that refuses the queue fails
// the request or the start-up, and a corrupt batch is set aside without stopping delivery.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { Notifier, newEvent, type Event, type EventOrigin } from '../../src/notifications/index.js';
import type { StorageDriver } from '../../src/storage/driver.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { pushImage } from '../server/helpers.js';
import { endpoint, queuedBatches, startNotifying } from './helpers.js';
import { startReceiver } from './receiver.js';

const log = pino({ level: 'silent' });
const origin: EventOrigin = { request: { id: 'r', method: 'PUT', useragent: 'test' }, actor: {}, source: { addr: 'test:0' } };
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => fsp.rm(d, { recursive: true, force: true }))));

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-queue-'));
  dirs.push(d);
  return d;
}

/** A filesystem driver that counts batch writes. */
function countingDriver(root: string): { driver: StorageDriver; batchWrites: () => number } {
  const inner = new FilesystemDriver({ rootdirectory: root });
  let writes = 0;
  const driver = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'putContent') {
        return (p: string, c: Buffer) => {
          if (p.includes('/endpoints/')) writes++;
          return target.putContent(p, c);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { driver, batchWrites: () => writes };
}

function events(n: number, tag = 't'): Event[] {
  return Array.from({ length: n }, (_, i) => newEvent('push', origin, { repository: 'q/app', tag: `${tag}${i}` }));
}

describe('durable event queue', { timeout: 60_000 }, () => {
  test('enqueue resolves only once the events are in storage; concurrent callers share writes', async () => {
    const dir = tempDir();
    const receiver = await startReceiver();
    await receiver.stop(); // down: nothing is delivered (and removed) while we look
    const { driver, batchWrites } = countingDriver(dir);
    const notifier = (await Notifier.start({ includeReferences: false, endpoints: [endpoint(receiver.url, { threshold: 1, backoff: 60_000 })] }, { driver, instance: 'q1', sourceAddr: 'test:0', log }))!;
    try {
      const all = events(100);
      const stored = () => new Set(queuedBatches(dir).flatMap((b) => b.ids));
      await Promise.all(
        all.map((e) =>
          notifier.enqueue([e]).then(() => {
            assert.ok(stored().has(e.id), `event ${e.id} is in storage when its enqueue resolves`);
          }),
        ),
      );
      assert.ok(batchWrites() <= 3, `100 concurrent enqueues took ${batchWrites()} writes`);
      assert.deepEqual(queuedBatches(dir).flatMap((b) => b.ids), all.map((e) => e.id), 'stored in the order enqueued');
      assert.equal(notifier.stats().endpoints[0]!.pending, 100);
    } finally {
      await notifier.close();
    }
  });

  test('a large group is split into batches of 500, delivered in order; delivered batches leave storage', async () => {
    const dir = tempDir();
    const receiver = await startReceiver();
    const { driver } = countingDriver(dir);
    const notifier = (await Notifier.start({ includeReferences: false, endpoints: [endpoint(receiver.url)] }, { driver, instance: 'q2', sourceAddr: 'test:0', log }))!;
    try {
      const all = events(1200);
      await receiver.stop();
      await notifier.enqueue(all);
      assert.deepEqual(queuedBatches(dir).map((b) => b.ids.length), [500, 500, 200]);
      await receiver.start();
      await receiver.waitFor(() => receiver.accepted.length === 1200, '1200 events', 60_000);
      assert.deepEqual(receiver.accepted.map((e) => e.id), all.map((e) => e.id));
      const deadline = Date.now() + 5000;
      while (queuedBatches(dir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(queuedBatches(dir), []);
    } finally {
      await notifier.close();
      await receiver.stop();
    }
  });

  test('a batch that does not parse is moved to corrupt/ and delivery goes on with the next', async () => {
    const dir = tempDir();
    const receiver = await startReceiver();
    await receiver.stop();
    const notifier = (await Notifier.start({ includeReferences: false, endpoints: [endpoint(receiver.url, { threshold: 1, backoff: 100 })] }, { driver: new FilesystemDriver({ rootdirectory: dir }), instance: 'q3', sourceAddr: 'test:0', log }))!;
    try {
      const good = events(2);
      await notifier.enqueue([good[0]!]);
      await notifier.enqueue([good[1]!]);
      const [first] = queuedBatches(dir);
      await notifier.close(); // stop delivery while the first batch is spoiled
      fs.writeFileSync(first!.file, '{"events": [trunc');
      const again = (await Notifier.start({ includeReferences: false, endpoints: [endpoint(receiver.url)] }, { driver: new FilesystemDriver({ rootdirectory: dir }), instance: 'q3', sourceAddr: 'test:0', log }))!;
      await receiver.start();
      await receiver.waitFor(() => receiver.accepted.length === 1, 'the good event');
      assert.equal(receiver.accepted[0].id, good[1]!.id);
      const corrupt = path.join(dir, 'wharf', 'notifications', 'q3', 'corrupt');
      const [key] = fs.readdirSync(corrupt);
      assert.deepEqual(fs.readdirSync(path.join(corrupt, key!)), [path.basename(first!.file)]);
      assert.equal(fs.readFileSync(path.join(corrupt, key!, path.basename(first!.file)), 'utf8'), '{"events": [trunc', 'kept as it was');
      await again.close();
    } finally {
      await notifier.close();
      await receiver.stop();
    }
  });

  test('storage that refuses a batch fails the request (500) instead of answering with the event lost', async () => {
    const receiver = await startReceiver();
    const server = await startNotifying({ endpoints: [endpoint(receiver.url)], instance: 'q4' });
    const endpoints = path.join(server.dir, 'wharf', 'notifications', 'q4', 'endpoints');
    try {
      fs.writeFileSync(endpoints, 'not a directory'); // the batch cannot be created below it
      const res = await fetch(`${server.url}/v2/refused/app/blobs/uploads/?digest=sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855`, { method: 'POST', body: '' });
      assert.equal(res.status, 500);
      assert.equal(JSON.parse(await res.text()).errors[0].code, 'UNKNOWN');
      fs.rmSync(endpoints);
      await pushImage(server, 'refused/app', 'v1');
      await receiver.waitFor(() => receiver.accepted.length === 3, 'events once storage accepts them again');
    } finally {
      await server.close();
      await receiver.stop();
    }
  });

  test('start-up stops with the queue path when storage refuses the queue, or with the key of an unusable URL', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'wharf'), 'in the way');
    await assert.rejects(startNotifying({ dir, endpoints: [endpoint('http://127.0.0.1:9/')], instance: 'q5' }), /notifications: cannot write the event queue at \/wharf\/notifications\/q5 in filesystem storage/);
    await assert.rejects(
      startNotifying({ dir: tempDir(), endpoints: [endpoint('http://127.0.0.1:9/', { disabled: true }), endpoint('')] }),
      /notifications\.endpoints\[1\]\.url: expected an absolute http:\/\/ or https:\/\/ URL, got ""/,
    );
    await assert.rejects(startNotifying({ dir: tempDir(), endpoints: [endpoint('ftp://x/')] }), /notifications\.endpoints\[0\]\.url/);
  });
});
