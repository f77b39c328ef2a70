// Run by fleet.test.ts as a process of its own: it owns the queue directory INSTANCE under ROOT,
// queues COUNT events for an endpoint at URL, prints their ids, then lives (renewing its lease
// every 100 ms) until it is killed. It looks for gone instances' queues only once, at start, so
// that the test's own instance is the one that takes a killed child's queue over.
import { pino } from 'pino';
import { Notifier, newEvent } from '../../src/notifications/index.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';

const [root, instance, url, count] = process.argv.slice(2) as [string, string, string, string];
const notifier = (await Notifier.start(
  {
    includeReferences: false,
    endpoints: [{ name: 'hook', url, headers: {}, timeout: 500, threshold: 1, backoff: 60_000, ignoredMediaTypes: [], ignoredActions: [] }],
    timing: { renewMs: 100, leaseMs: 1000, scanMs: 3_600_000 },
  },
  { driver: new FilesystemDriver({ rootdirectory: root }), instance, sourceAddr: `${instance}:0`, log: pino({ level: 'silent' }) },
))!;
const origin = { request: { id: instance, method: 'PUT', useragent: 'queue-child' }, actor: {}, source: notifier.source };
const events = Array.from({ length: Number(count) }, (_, i) => newEvent('push', origin, { repository: `fleet/${instance}`, tag: `t${i}` }));
// In a few groups, as concurrent requests would queue them.
for (let i = 0; i < events.length; i += 7) await notifier.enqueue(events.slice(i, i + 7));
process.stdout.write(`QUEUED ${JSON.stringify(events.map((e) => e.id))}\n`);
setInterval(() => undefined, 1 << 30);
