// SIGTERM: the spans still buffered (the batch is exported only every 60 s here) reach the receiver
// before the process exits, after the requests in flight were drained.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sleep } from '../e2e/process.js';
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

describe('tracing when the collector refuses spans', () => {
  it('logs the failure once, and serving goes on', async () => {
    let refused = 0;
    const collector = http.createServer((req, res) => {
      req.resume();
      refused++;
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"code":3,"message":"no tenant"}');
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    const wharf = await startWharf({ env: otelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_BSP_SCHEDULE_DELAY: '20' }) });
    try {
      for (let i = 0; i < 3; i++) {
        assert.equal((await fetch(`${wharf.url}/v2/_catalog`)).status, 200);
        await sleep(100);
      }
      const deadline = Date.now() + 10_000;
      while (refused < 3 && Date.now() < deadline) await sleep(50);
      assert.ok(refused >= 3, `the collector was asked ${refused} times`);
      const failures = wharf.logTail(200).split('\n').filter((l) => l.includes('msg="tracing:'));
      assert.equal(failures.length, 1, `one line for the repeated failure:\n${failures.join('\n')}`);
      assert.match(failures[0], /level=error msg="tracing: exporting spans failed: Bad Request: .*no tenant/);
    } finally {
      await wharf.stop();
      collector.close();
    }
  });
});
