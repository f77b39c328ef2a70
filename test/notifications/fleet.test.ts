// Instances sharing one storage: the queue of an instance that was killed (kill -9, a real
// process) is taken over by a live one once its lease has not changed for the lease time, and
// every event arrives, in order, with its id; the queue of a live instance is left alone.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { Notifier } from '../../src/notifications/index.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { endpoint, queuedBatches } from './helpers.js';
import { startReceiver } from './receiver.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'queue-child.js');
const children = new Set<ChildProcess>();
const dirs: string[] = [];
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(dirs.map((d) => fsp.rm(d, { recursive: true, force: true })));
});

/** Start a queue-owning process and wait for the ids it queued. */
function queueInChild(root: string, instance: string, url: string, count: number): Promise<{ child: ChildProcess; ids: string[] }> {
  const child = spawn(process.execPath, [CHILD, root, instance, url, String(count)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /QUEUED (.*)\n/.exec(out);
      if (m) resolve({ child, ids: JSON.parse(m[1]!) as string[] });
    });
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code, signal) => reject(new Error(`queue child exited (${code ?? signal}) before queueing: ${err}`)));
  });
}

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('queues in a fleet sharing storage', { timeout: 60_000 }, () => {
  test('a live instance keeps its queue; once killed, another instance delivers every event it had queued', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-fleet-'));
    dirs.push(root);
    const receiver = await startReceiver();
    await receiver.stop(); // down while the events are queued
    const a = await queueInChild(root, 'node-a', receiver.url, 40);
    const c = await queueInChild(root, 'node-c', receiver.url, 5);
    const inDir = (instance: string) => queuedBatches(root).filter((b) => b.file.includes(`${path.sep}${instance}${path.sep}`));
    assert.deepEqual(inDir('node-a').flatMap((b) => b.ids), a.ids);

    const b = (await Notifier.start(
      { includeReferences: false, endpoints: [endpoint(receiver.url, { threshold: 1, backoff: 200 })], timing: { renewMs: 100, leaseMs: 1000, scanMs: 200 } },
      { driver: new FilesystemDriver({ rootdirectory: root }), instance: 'node-b', sourceAddr: 'node-b:0', log: pino({ level: 'silent' }) },
    ))!;
    try {
      // Alive: their leases keep changing, so nothing is taken over, however long we wait past the lease time.
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(inDir('node-a').length > 0 && inDir('node-c').length > 0, true);
      assert.deepEqual(inDir('node-b'), []);

      await kill9(a.child);
      const killedAt = Date.now();
      await receiver.start();
      await receiver.waitFor(() => receiver.accepted.length >= 40, "node-a's 40 events", 20_000);
      const firstAt = receiver.requests[0]!.at;
      assert.ok(firstAt - killedAt >= 900, `taken over ${firstAt - killedAt} ms after the kill: not before the lease time`);
      // Every event, once, in the order node-a queued them, with node-a's ids and source.
      assert.deepEqual(receiver.accepted.map((e) => e.id), a.ids);
      assert.ok(receiver.accepted.every((e) => e.source.addr === 'node-a:0' && e.target.repository === 'fleet/node-a'));
      assert.deepEqual(inDir('node-a'), []);
      // node-c is still alive: its events stay in its own queue.
      assert.equal(inDir('node-c').flatMap((x) => x.ids).length, 5);
      const deadline = Date.now() + 5000;
      while (inDir('node-b').length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(inDir('node-b'), [], 'delivered batches leave the queue they were moved to');
    } finally {
      await b.close();
      c.child.kill('SIGKILL');
      await receiver.stop();
    }
  });

  test('an instance stopped cleanly marks its queue: it is taken over without waiting for the lease', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-fleet-'));
    dirs.push(root);
    const receiver = await startReceiver();
    await receiver.stop();
    const log = pino({ level: 'silent' });
    const driver = new FilesystemDriver({ rootdirectory: root });
    const timing = { renewMs: 100, leaseMs: 30_000, scanMs: 200 };
    const first = (await Notifier.start({ includeReferences: false, endpoints: [endpoint(receiver.url, { threshold: 1, backoff: 60_000 })], timing }, { driver, instance: 'old', sourceAddr: 'old:0', log }))!;
    const origin = { request: { id: 'r', method: 'PUT', useragent: 't' }, actor: {}, source: first.source };
    const { newEvent } = await import('../../src/notifications/index.js');
    const queued = [newEvent('delete', origin, { repository: 'x', tag: 'a' }), newEvent('delete', origin, { repository: 'x', tag: 'b' })];
    await first.enqueue(queued);
    await first.close();
    const second = (await Notifier.start({ includeReferences: false, endpoints: [endpoint(receiver.url)], timing }, { driver, instance: 'new', sourceAddr: 'new:0', log }))!;
    try {
      await receiver.start();
      await receiver.waitFor(() => receiver.accepted.length === 2, 'the stopped instance\'s 2 events', 5000);
      assert.deepEqual(receiver.accepted.map((e) => e.id), queued.map((e) => e.id));
    } finally {
      await second.close();
      await receiver.stop();
    }
  });
});
