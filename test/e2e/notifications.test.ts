// Webhook notifications from a real `wharf serve` process to a real HTTP receiver on 127.0.0.1:
// - the events skopeo's push and pull cause, plus a raw cross-repository mount and deletes, field
//   by field (WHARF_E2E_TARGET=reference checks the same expectations against docker-registry 2.8);
// - kill -9 right after pushes answered while the endpoint was down, or hanging on an attempt:
//   after the restart every event arrives, with the id it was queued with, and an event seen
//   twice is the same event.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { EVENTS_MEDIA_TYPE } from '../../src/notifications/index.js';
import { queuedBatches } from '../notifications/helpers.js';
import { startReceiver, type Receiver } from '../notifications/receiver.js';
import {
  TARGET,
  freePort,
  httpRequest,
  makeTinyImage,
  readBlobJson,
  requireTools,
  skopeoCopy,
  startTarget,
  startWharf,
  tempDir,
  type OciImage,
  type RegistryServer,
} from './harness.js';

function notificationsConfig(url: string, disabledUrl: string): string[] {
  return [
    'notifications:',
    '  events:',
    '    includereferences: true',
    '  endpoints:',
    '    - name: e2e',
    `      url: ${url}`,
    '      headers:',
    '        X-E2E: [yes]',
    '      timeout: 2s',
    '      threshold: 3',
    '      backoff: 200ms',
    '    - name: off',
    '      disabled: true',
    `      url: ${disabledUrl}`,
  ];
}

/** "push sha256:…" for blobs, "push tag" for manifests: what a set of events did. */
function summary(events: any[]): string[] {
  return events.map((e) => `${e.action} ${e.target.repository} ${e.target.tag ?? e.target.digest}`);
}

describe('notifications end to end', { timeout: 300_000 }, () => {
  const servers: RegistryServer[] = [];
  const receivers: Receiver[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
    for (const r of receivers) await r.stop();
  });

  test('skopeo push and pull, a mount and deletes: the events, field by field', async () => {
    requireTools('skopeo', 'umoci');
    const receiver = await startReceiver();
    const disabled = await startReceiver();
    receivers.push(receiver, disabled);
    const work = tempDir('notify');
    const reg = await startTarget({ workDir: work, extraConfig: notificationsConfig(receiver.url, disabled.url) });
    servers.push(reg);
    const image = await makeTinyImage(path.join(work, 'src'), 'img', 1);
    const manifest = readBlobJson(image.layout, image.digest);
    const manifestSize = fs.statSync(path.join(image.layout, 'blobs', 'sha256', image.digest.slice(7))).size;

    await skopeoCopy(image.ref, `docker://${reg.host}/e2e/app:v1`);
    const pushCount = image.blobs.length + 1;
    await receiver.waitFor(() => receiver.accepted.length >= pushCount, `${pushCount} push events`);
    const pushes = receiver.accepted.slice(0, pushCount);
    const mediaType = TARGET === 'reference' ? 'application/vnd.docker.distribution.events.v1+json' : EVENTS_MEDIA_TYPE;
    for (const r of receiver.requests) {
      assert.equal(r.headers['content-type'], mediaType);
      assert.equal(r.headers['x-e2e'], 'yes');
      assert.equal(r.envelope?.events.length, 1);
    }
    for (const e of pushes) {
      assert.equal(e.action, 'push');
      assert.equal(e.request.method, 'PUT');
      assert.match(e.request.useragent, /^skopeo\//);
      assert.equal(e.request.host, reg.host);
      assert.match(e.request.addr, /^127\.0\.0\.1:\d+$/);
      assert.deepEqual(e.actor, {});
      assert.equal(e.source.addr, `${hostname()}:${reg.port}`);
    }
    // Blobs in whatever order skopeo sends them, then the manifest.
    const blobPushes = pushes.slice(0, -1);
    assert.deepEqual(blobPushes.map((e) => e.target.digest).sort(), [...image.blobs].sort());
    for (const e of blobPushes) {
      assert.deepEqual(e.target, {
        mediaType: 'application/octet-stream',
        size: e.target.size,
        digest: e.target.digest,
        length: e.target.size,
        repository: 'e2e/app',
        url: `${reg.url}/v2/e2e/app/blobs/${e.target.digest}`,
      });
      assert.ok(e.target.size > 0);
    }
    const refs = [manifest.config, ...manifest.layers].map((d: any) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest }));
    assert.deepEqual(pushes.at(-1).target, {
      mediaType: image.mediaType,
      size: manifestSize,
      digest: image.digest,
      length: manifestSize,
      repository: 'e2e/app',
      url: `${reg.url}/v2/e2e/app/manifests/${image.digest}`,
      tag: 'v1',
      references: refs,
    });

    await skopeoCopy(`docker://${reg.host}/e2e/app:v1`, `oci:${path.join(work, 'pulled')}:p`);
    await receiver.waitFor(() => receiver.accepted.length >= pushCount + pushCount, 'a pull event per blob and the manifest');
    await new Promise((r) => setTimeout(r, 300));
    const pulls = receiver.accepted.slice(pushCount);
    assert.ok(pulls.every((e) => e.action === 'pull' && e.request.method === 'GET'), summary(pulls).join('\n'));
    const manifestPull = pulls.find((e) => e.target.digest === image.digest);
    assert.deepEqual(manifestPull?.target, { ...pushes.at(-1).target });
    assert.deepEqual([...new Set(pulls.map((e) => e.target.digest))].sort(), [image.digest, ...image.blobs].sort());

    const layer = manifest.layers[0].digest;
    const seen = receiver.accepted.length;
    assert.equal((await httpRequest('POST', `${reg.url}/v2/e2e/copy/blobs/uploads/?mount=${layer}&from=e2e/app`)).status, 201);
    assert.equal((await httpRequest('DELETE', `${reg.url}/v2/e2e/copy/blobs/${layer}`)).status, 202);
    assert.equal((await httpRequest('DELETE', `${reg.url}/v2/e2e/app/manifests/${image.digest}`)).status, 202);
    await receiver.waitFor(() => receiver.accepted.length >= seen + 4, 'mount and delete events');
    await new Promise((r) => setTimeout(r, 300));
    const [mount, blobDelete, manifestDelete, tagDelete, ...extra] = receiver.accepted.slice(seen);
    assert.deepEqual(extra, []);
    assert.equal(mount.action, 'mount');
    const layerSize = manifest.layers[0].size;
    assert.deepEqual(mount.target, {
      mediaType: 'application/octet-stream',
      size: layerSize,
      digest: layer,
      length: layerSize,
      repository: 'e2e/copy',
      fromRepository: 'e2e/app',
      url: `${reg.url}/v2/e2e/copy/blobs/${layer}`,
    });
    assert.deepEqual([blobDelete.action, blobDelete.target], ['delete', { digest: layer, repository: 'e2e/copy' }]);
    assert.deepEqual([manifestDelete.action, manifestDelete.target], ['delete', { digest: image.digest, repository: 'e2e/app' }]);
    assert.deepEqual([tagDelete.action, tagDelete.target], ['delete', { repository: 'e2e/app', tag: 'v1' }]);
    assert.equal(disabled.requests.length, 0, 'a disabled endpoint gets nothing');
    assert.deepEqual(receiver.requests.filter((r) => r.status !== 200), [], 'nothing was retried');
  });

  test('kill -9 with events queued (endpoint down, then hanging on an attempt): after a restart every event arrives, with its id', { skip: TARGET === 'reference' && "Distribution's queue is in memory" }, async () => {
    requireTools('skopeo', 'umoci');
    const receiver = await startReceiver();
    receivers.push(receiver);
    await receiver.stop(); // down: nothing is delivered before the kill
    const work = tempDir('notify-crash');
    const port = await freePort();
    const config = notificationsConfig(receiver.url, 'http://127.0.0.1:9/');
    let reg = await startWharf({ workDir: work, port, extraConfig: config });
    servers.push(reg);
    const images: OciImage[] = [];
    for (let i = 0; i < 3; i++) images.push(await makeTinyImage(path.join(work, 'src'), `img${i}`, 1));
    await Promise.all(images.map((img, i) => skopeoCopy(img.ref, `docker://${reg.host}/crash/app${i}:v1`)));
    // Every request of the pushes has been answered: its event must survive a kill -9 now.
    await reg.kill();
    const queued = queuedBatches(reg.dataDir).flatMap((b) => b.ids);
    const expected = images.flatMap((img, i) => [...img.blobs.map((d) => `push crash/app${i} ${d}`), `push crash/app${i} v1`]);

    // Restart with the endpoint up but hanging: the first attempt is in flight when we kill again.
    receiver.behaviour = () => 'hang';
    await receiver.start(receiver.port);
    reg = await startWharf({ workDir: work, dataDir: reg.dataDir, port, extraConfig: config });
    servers.push(reg);
    await receiver.waitFor(() => receiver.requests.length >= 1, 'an attempt in flight');
    await reg.kill();
    await receiver.stop();

    receiver.behaviour = () => 200;
    await receiver.start(receiver.port);
    reg = await startWharf({ workDir: work, dataDir: reg.dataDir, port, extraConfig: config });
    servers.push(reg);
    // Well within the 60 s lease: the restarted process resumes its own queue at once.
    await receiver.waitFor(() => new Set(receiver.accepted.map((e) => e.id)).size >= queued.length, `all ${queued.length} queued events`, 30_000);

    const acceptedIds = [...new Set(receiver.accepted.map((e) => e.id))];
    assert.deepEqual(acceptedIds.sort(), [...queued].sort(), 'every queued event arrives, and nothing else');
    assert.deepEqual([...new Set(receiver.accepted.map((e) => e.id))], queued, 'in the order they were queued');
    assert.deepEqual(summary(dedupe(receiver.accepted)).sort(), expected.sort(), 'the events of every answered request');
    // The event of the abandoned attempt came again with the same id; any duplicate is the same event.
    const byId = new Map<string, string>();
    for (const e of receiver.attempted) {
      const body = JSON.stringify(e);
      assert.equal(byId.get(e.id) ?? body, body, `event ${e.id} sent twice with different content`);
      byId.set(e.id, body);
    }
    assert.ok(receiver.accepted.some((e) => e.id === receiver.requests[0]!.envelope!.events[0].id));
    const deadline = Date.now() + 5000;
    while (queuedBatches(reg.dataDir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(queuedBatches(reg.dataDir), [], 'the queue is empty once everything is delivered');
  });
});

function dedupe(events: any[]): any[] {
  const seen = new Set<string>();
  return events.filter((e) => !seen.has(e.id) && seen.add(e.id));
}
