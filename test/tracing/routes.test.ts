// Span names and routes in-process: under `http.prefix`, for paths no route matches, for methods
// HTTP does not know, and a sampled-out caller (traceparent flag 00) whose request records nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startRegistry, type StartedRegistry } from '../../src/cli/start.js';
import { settingsFromConfig } from '../../src/cli/serve.js';
import { loadConfig } from '../../src/config/index.js';
import { tracingSettingsFromEnv } from '../../src/tracing/env.js';
import { finishUpload, startUpload } from '../e2e/clients.js';
import { sha256 } from '../e2e/images.js';
import { OtlpReceiver } from './otlp-receiver.js';
import { randomTraceparent, serverSpans } from './helpers.js';

function send(url: string, method: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('tracing: routes and names', () => {
  let receiver: OtlpReceiver;
  let started: StartedRegistry;

  before(async () => {
    receiver = await OtlpReceiver.start();
    const { config } = loadConfig({
      env: { REGISTRY_STORAGE: 'inmemory', REGISTRY_HTTP_ADDR: '127.0.0.1:0', REGISTRY_HTTP_PREFIX: '/reg/', REGISTRY_LOG_LEVEL: 'error' },
    });
    const settings = settingsFromConfig(config);
    settings.tracing = tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '20' });
    started = await startRegistry(settings);
  });
  after(async () => {
    await started?.close();
    await receiver?.close();
  });

  it('routes carry http.prefix; unmatched paths and unknown methods get no route', async () => {
    assert.equal(await send(`${started.url}/reg/v2/lib/app/tags/list`, 'GET'), 404);
    assert.equal(await send(`${started.url}/reg/v2/_catalog?n=10`, 'GET'), 200);
    assert.equal(await send(`${started.url}/not/registry`, 'GET'), 404);
    assert.equal(await send(`${started.url}/reg/v2/`, 'PURGE'), 405);
    const spans = await receiver.waitFor('four request spans', (all) => all.filter((s) => s.kind === 2).length >= 4);
    const tags = serverSpans(spans, 'GET', '/reg/v2/lib/app/tags/list')[0];
    assert.equal(tags.name, 'GET /reg/v2/{name}/tags/list');
    assert.equal(tags.attributes['http.route'], '/reg/v2/{name}/tags/list');
    assert.equal(tags.attributes['wharf.repository'], 'lib/app');
    const catalog = serverSpans(spans, 'GET', '/reg/v2/_catalog')[0];
    assert.equal(catalog.name, 'GET /reg/v2/_catalog');
    assert.equal(catalog.attributes['url.query'], 'n=10');
    const unmatched = serverSpans(spans, 'GET', '/not/registry')[0];
    assert.equal(unmatched.name, 'GET');
    assert.equal(unmatched.attributes['http.route'], undefined);
    const purge = spans.find((s) => s.kind === 2 && s.attributes['http.request.method_original'] === 'PURGE')!;
    assert.equal(purge.name, 'HTTP /reg/v2/');
    assert.equal(purge.attributes['http.request.method'], '_OTHER');
    assert.equal(purge.attributes['http.response.status_code'], 405);
    assert.equal(purge.statusCode, 0);
  });

  it('a caller that sampled its trace out: nothing is recorded for the request or its storage calls', async () => {
    const caller = randomTraceparent();
    const unsampled = caller.header.replace(/-01$/, '-00');
    assert.equal(await send(`${started.url}/reg/v2/lib/app/tags/list`, 'GET', { traceparent: unsampled, 'user-agent': 'sampled-out' }), 404);
    assert.equal(await send(`${started.url}/reg/v2/`, 'GET', { 'user-agent': 'after' }), 200);
    await receiver.waitFor('the later request', (all) => all.some((s) => s.attributes['user_agent.original'] === 'after'));
    assert.deepEqual(receiver.spans.filter((s) => s.traceId === caller.traceId || s.attributes['user_agent.original'] === 'sampled-out'), []);
  });

  it('a driver without a fast path: the Reader span lasts the stream, also when the client leaves early', async () => {
    const base = `${started.url}/reg`;
    const small = Buffer.from('a small blob');
    const big = Buffer.alloc(32 * 1024 * 1024, 3);
    for (const blob of [small, big]) assert.equal((await finishUpload(await startUpload(base, 'lib/app'), sha256(blob), blob)).status, 201);
    const whole = await fetch(`${base}/v2/lib/app/blobs/${sha256(small)}`);
    assert.equal(Buffer.from(await whole.arrayBuffer()).toString(), 'a small blob');
    const controller = new AbortController();
    const partial = await fetch(`${base}/v2/lib/app/blobs/${sha256(big)}`, { signal: controller.signal });
    const body = partial.body!.getReader();
    await body.read();
    controller.abort();
    await body.read().catch(() => undefined);
    const readerOf = (digest: string) => {
      const request = serverSpans(receiver.spans, 'GET', `/reg/v2/lib/app/blobs/${digest}`)[0];
      return request && receiver.children(request).find((c) => c.name === 'Reader');
    };
    await receiver.waitFor('both Reader spans', () => readerOf(sha256(small)) !== undefined && readerOf(sha256(big)) !== undefined);
    assert.equal(readerOf(sha256(small))!.attributes['io.cncf.distribution.storage.driver.name'], 'inmemory');
    assert.deepEqual(readerOf(sha256(small))!.events, []);
    const cut = readerOf(sha256(big))!;
    assert.deepEqual(cut.events, ['closed before the end (the client went away)']);
    assert.equal(cut.statusCode, 0);
  });
});
