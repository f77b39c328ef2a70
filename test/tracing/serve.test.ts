// `wharf serve` with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a real OTLP/HTTP receiver: what a
// tracing backend would receive for pushes, pulls, a caller's traceparent, a 404, a 500, an
// abandoned download and a skopeo pull.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { httpRequest, skopeoCopy } from '../e2e/clients.js';
import { requireTools, tempDir } from '../e2e/process.js';
import { sha256 } from '../e2e/images.js';
import { finishUpload, startUpload } from '../e2e/clients.js';
import { startWharf, type RegistryServer } from '../e2e/servers.js';
import { OtlpReceiver, type ReceivedSpan } from './otlp-receiver.js';
import { otelEnv, pushImage, randomTraceparent, serverSpans, type PushedImage } from './helpers.js';

const SERVER = 2;
const ERROR = 2;
const DRIVER = 'io.cncf.distribution.storage.driver.name';
const PATH = 'io.cncf.distribution.storage.path';

describe('tracing: wharf serve exporting to an OTLP/HTTP receiver', () => {
  let receiver: OtlpReceiver;
  let wharf: RegistryServer;
  let image: PushedImage;
  const repo = 'team/app';

  before(async () => {
    receiver = await OtlpReceiver.start();
    wharf = await startWharf({
      env: otelEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20s3cret',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test',
        OTEL_BSP_SCHEDULE_DELAY: '50',
      }),
    });
    image = await pushImage(wharf.url, repo, '1.0');
  });

  after(async () => {
    await wharf?.stop();
    await receiver?.close();
  });

  it('logs where spans go, and sends them with the configured headers and resource', async () => {
    assert.match(wharf.logTail(50), new RegExp(`tracing on: spans go to ${receiver.url}/v1/traces \\(OTLP/HTTP JSON\\)`));
    await receiver.waitFor('a span', (s) => s.length > 0);
    assert.deepEqual(receiver.rejected, []);
    assert.equal(receiver.exports[0].headers.authorization, 'Bearer s3cret');
    assert.equal(receiver.exports[0].path, '/v1/traces');
    const resource = receiver.spans[0].resource;
    assert.equal(resource['service.name'], 'wharf');
    assert.equal(resource['deployment.environment.name'], 'test');
    assert.match(String(resource['service.version']), /^\d+\.\d+\.\d+/);
  });

  it('push and pull: one SERVER span per request named by its route, storage calls as its children', async () => {
    const manifest = await httpRequest('GET', `${wharf.url}/v2/${repo}/manifests/1.0`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(manifest.status, 200);
    const blob = await httpRequest('GET', `${wharf.url}/v2/${repo}/blobs/${image.layerDigest}`);
    assert.equal(blob.status, 200);
    const blobPath = `/v2/${repo}/blobs/${image.layerDigest}`;
    const spans = await receiver.waitFor('the blob GET and its storage spans', (all) => {
      const get = serverSpans(all, 'GET', blobPath)[0];
      return get !== undefined && receiver.children(get).some((c) => c.name === 'Reader');
    });

    const names = new Set(spans.filter((s) => s.kind === SERVER).map((s) => s.name));
    for (const name of [
      'GET /v2/',
      'POST /v2/{name}/blobs/uploads/',
      'PUT /v2/{name}/blobs/uploads/{uuid}',
      'PUT /v2/{name}/manifests/{reference}',
      'GET /v2/{name}/manifests/{reference}',
      'GET /v2/{name}/blobs/{digest}',
    ]) {
      assert.ok(names.has(name), `a span named ${name}; got ${[...names].join(', ')}`);
    }
    for (const name of names) assert.ok(!name.includes('team') && !name.includes('sha256'), `span names hold no repository or digest: ${name}`);

    const get = serverSpans(spans, 'GET', blobPath)[0];
    assert.equal(get.name, 'GET /v2/{name}/blobs/{digest}');
    assert.equal(get.attributes['http.route'], '/v2/{name}/blobs/{digest}');
    assert.equal(get.attributes['http.response.status_code'], 200);
    assert.equal(get.attributes['url.scheme'], 'http');
    assert.equal(get.attributes['server.address'], '127.0.0.1');
    assert.equal(get.attributes['server.port'], wharf.port);
    assert.equal(get.attributes['client.address'], '127.0.0.1');
    assert.equal(get.attributes['wharf.repository'], repo);
    assert.equal(get.attributes['wharf.digest'], image.layerDigest);
    assert.equal(typeof get.attributes['user_agent.original'], 'string');
    assert.equal(get.statusCode, 0);
    const reader = receiver.children(get).find((c) => c.name === 'Reader')!;
    assert.equal(reader.kind, 1, 'storage spans are INTERNAL');
    assert.equal(reader.attributes[DRIVER], 'filesystem');
    assert.equal(reader.attributes[PATH], `/docker/registry/v2/blobs/sha256/${image.layerDigest.slice(7, 9)}/${image.layerDigest.slice(7)}/data`);
    // It starts inside the request; it may end a moment after the response (the file is closed after the last byte).
    assert.ok(reader.startNs >= get.startNs && reader.startNs <= get.endNs && reader.endNs >= reader.startNs, 'the storage call starts within the request');

    // The upload that finished the layer: its Writer session, the commit inside it, the move into place.
    const put = spans.find((s) => s.kind === SERVER && s.name === 'PUT /v2/{name}/blobs/uploads/{uuid}' && s.attributes['wharf.digest'] === image.layerDigest);
    assert.ok(put, 'a span for the PUT that finished the layer upload');
    assert.equal(put.attributes['http.response.status_code'], 201);
    assert.equal(put.attributes['wharf.repository'], repo);
    assert.match(String(put.attributes['wharf.upload.uuid']), /^[0-9a-f-]{36}$/);
    const children = receiver.children(put);
    const writer = children.find((c) => c.name === 'Writer');
    assert.ok(writer, `a Writer child; got ${children.map((c) => c.name).join(', ')}`);
    assert.equal(writer.attributes['wharf.storage.bytes_written'], Number(fs.statSync(path.join(wharf.dataDir, 'docker/registry/v2/blobs/sha256', image.layerDigest.slice(7, 9), image.layerDigest.slice(7), 'data')).size));
    assert.ok(receiver.children(writer).some((c) => c.name === 'Commit'), 'the commit is a child of the writing session');
    assert.ok(children.some((c) => c.name === 'Move' && String(c.attributes['io.cncf.distribution.storage.dest.path']).endsWith('/data')));

    const manifestPut = spans.find((s) => s.name === 'PUT /v2/{name}/manifests/{reference}')!;
    assert.equal(manifestPut.attributes['wharf.tag'], '1.0');
    assert.equal(manifestPut.attributes['http.response.status_code'], 201);
    assert.ok(receiver.children(manifestPut).some((c) => c.name === 'PutContent'));
    assert.ok(spans.every((s) => s.kind === SERVER || s.parentSpanId !== ''), 'no storage span without a request');
  });

  it("a request with traceparent joins the caller's trace", async () => {
    const caller = randomTraceparent();
    const r = await httpRequest('GET', `${wharf.url}/v2/${repo}/manifests/${image.manifestDigest}`, {
      headers: { traceparent: caller.header, accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(r.status, 200);
    const spans = await receiver.waitFor('the span of the traced request', (all) => all.some((s) => s.traceId === caller.traceId && s.kind === SERVER));
    const span = spans.find((s) => s.traceId === caller.traceId && s.kind === SERVER)!;
    assert.equal(span.parentSpanId, caller.parentId);
    assert.equal(span.attributes['wharf.digest'], image.manifestDigest);
    await receiver.waitFor('its storage spans', () => receiver.children(span).length > 0);
    for (const child of receiver.children(span)) assert.equal(child.traceId, caller.traceId);
    // A malformed traceparent starts a new trace instead.
    const bad = await httpRequest('GET', `${wharf.url}/v2/`, { headers: { traceparent: `00-${'0'.repeat(32)}-${caller.parentId}-01`, 'user-agent': 'bad-traceparent' } });
    assert.equal(bad.status, 200);
    const fresh = (await receiver.waitFor('the bad-traceparent span', (all) => all.some((s) => s.attributes['user_agent.original'] === 'bad-traceparent'))).find(
      (s) => s.attributes['user_agent.original'] === 'bad-traceparent',
    )!;
    assert.equal(fresh.parentSpanId, '');
    assert.notEqual(fresh.traceId, '0'.repeat(32));
  });

  it('a 404 is not an error; a 500 is, on the request and on the storage call that failed', async () => {
    const missing = await httpRequest('GET', `${wharf.url}/v2/${repo}/manifests/nope`);
    assert.equal(missing.status, 404);
    // A tag link that is a symbolic link to itself: reading it fails with ELOOP, an internal error.
    const tagDir = path.join(wharf.dataDir, 'docker/registry/v2/repositories/team/broken/_manifests/tags/loop/current');
    fs.mkdirSync(tagDir, { recursive: true });
    fs.symlinkSync('link', path.join(tagDir, 'link'));
    const broken = await httpRequest('GET', `${wharf.url}/v2/team/broken/manifests/loop`);
    assert.equal(broken.status, 500);
    const spans = await receiver.waitFor('the 404 and 500 spans', (all) =>
      serverSpans(all, 'GET', `/v2/${repo}/manifests/nope`).length > 0 && serverSpans(all, 'GET', '/v2/team/broken/manifests/loop').length > 0,
    );
    const notFound = serverSpans(spans, 'GET', `/v2/${repo}/manifests/nope`)[0];
    assert.equal(notFound.attributes['http.response.status_code'], 404);
    assert.equal(notFound.statusCode, 0, 'a 404 leaves the span status unset');
    assert.equal(notFound.attributes['error.type'], undefined);
    await receiver.waitFor('the 404 storage spans', () => receiver.children(notFound).length > 0);
    const lookup = receiver.children(notFound).find((c) => c.name === 'GetContent')!;
    assert.equal(lookup.attributes['wharf.storage.not_found'], true);
    assert.equal(lookup.statusCode, 0, 'a missing path is an answer, not a storage failure');

    const failed = serverSpans(spans, 'GET', '/v2/team/broken/manifests/loop')[0];
    assert.equal(failed.attributes['http.response.status_code'], 500);
    assert.equal(failed.statusCode, ERROR);
    assert.equal(failed.attributes['error.type'], '500');
    await receiver.waitFor('the failed storage span', () => receiver.children(failed).some((c) => c.statusCode === ERROR));
    const storage = receiver.children(failed).find((c) => c.statusCode === ERROR)!;
    assert.equal(storage.name, 'GetContent');
    assert.ok(storage.events.includes('exception'), 'the storage error is recorded as an exception event');
  });

  it('a download the client abandons still ends its request and storage spans', async () => {
    const big = Buffer.alloc(48 * 1024 * 1024, 7);
    const digest = sha256(big);
    assert.equal((await finishUpload(await startUpload(wharf.url, repo), digest, big)).status, 201);
    const controller = new AbortController();
    const res = await fetch(`${wharf.url}/v2/${repo}/blobs/${digest}`, { signal: controller.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.read().catch(() => undefined);
    const spans = await receiver.waitFor('the abandoned download span', (all) => serverSpans(all, 'GET', `/v2/${repo}/blobs/${digest}`).length > 0);
    const span = serverSpans(spans, 'GET', `/v2/${repo}/blobs/${digest}`)[0];
    assert.ok(span.events.includes('client closed the connection before the response was complete'), `events: ${span.events.join(', ')}`);
    assert.equal(span.attributes['http.response.status_code'], 200);
    assert.equal(span.statusCode, 0, 'a client leaving is not a server error');
    await receiver.waitFor('its Reader span', () => receiver.children(span).some((c) => c.name === 'Reader'));
    const read = receiver.children(span).find((c) => c.name === 'Reader')!;
    assert.ok(read.endNs > 0n && read.endNs >= read.startNs);
  });

  it('skopeo pulling the image is traced request by request', async () => {
    requireTools('skopeo');
    const dest = tempDir('tracing-skopeo');
    await skopeoCopy(`docker://${wharf.host}/${repo}:1.0`, `oci:${dest}:1.0`, ['--src-tls-verify=false']);
    // skopeo fetches the config and the layer at once: their spans may come in different batches.
    const bySkopeo = (s: ReceivedSpan) => s.kind === SERVER && /containers|skopeo/i.test(String(s.attributes['user_agent.original']));
    const spans = await receiver.waitFor('the spans of skopeo pulling the config and the layer', (all) =>
      [image.layerDigest, image.configDigest].every((d) => all.some((s) => bySkopeo(s) && s.attributes['wharf.digest'] === d)),
    );
    const skopeo = spans.filter(bySkopeo);
    assert.ok(skopeo.some((s) => s.name === 'GET /v2/{name}/manifests/{reference}' && s.attributes['http.response.status_code'] === 200));
    assert.ok(skopeo.some((s) => s.name === 'GET /v2/{name}/blobs/{digest}' && s.attributes['wharf.digest'] === image.configDigest));
    const layerGet = skopeo.find((s) => s.attributes['wharf.digest'] === image.layerDigest) as ReceivedSpan;
    await receiver.waitFor('the Reader span of skopeo\'s layer GET', () => receiver.children(layerGet).some((c) => c.name === 'Reader'));
  });
});
