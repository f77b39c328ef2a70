// SIGTERM: the spans still buffered (the batch is exported only every 60 s here) reach the receiver
// before the process exits, after the requests in flight were drained.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startWharf, type RegistryServer } from '../e2e/servers.js';
import { OtlpReceiver } from './otlp-receiver.js';
import { otelEnv, serverSpans } from './helpers.js';

describe('tracing at shutdown', () => {
  let receiver: OtlpReceiver;
  let wharf: RegistryServer;

  before(async () => {
    receiver = await OtlpReceiver.start();
    wharf = await startWharf({ env: otelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '60000' }) });
  });
  after(async () => {
    await wharf?.kill();
    await receiver?.close();
  });

  it('SIGTERM exports the last spans before the process exits', async () => {
    const r = await fetch(`${wharf.url}/v2/_catalog`, { headers: { 'user-agent': 'last-request' } });
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    assert.deepEqual(receiver.exports, [], 'nothing is exported before the batch is due');
    await wharf.stop(); // SIGTERM, and wait for the exit
    const last = serverSpans(receiver.spans, 'GET', '/v2/_catalog');
    assert.equal(last.length, 1, `the last request's span arrived before exit; got ${receiver.spans.map((s) => s.name).join(', ') || 'nothing'}`);
    assert.equal(last[0].name, 'GET /v2/_catalog');
    assert.equal(last[0].attributes['user_agent.original'], 'last-request');
    assert.ok(receiver.children(last[0]).length > 0, 'with its storage spans');
    assert.ok(serverSpans(receiver.spans, 'GET', '/v2/').length > 0, "and the start-up probe's spans");
  });
});
