// Tracing off: without the OTEL_* variables that turn it on, no OpenTelemetry code is loaded and
// nothing is wrapped; with them turned off explicitly, a receiver gets nothing. Bad values and the
// replaced reporting.bugsnag/newrelic keys stop start-up with a message naming what to change.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { trace } from '@opentelemetry/api';
import { startRegistry } from '../../src/cli/start.js';
import { settingsFromConfig } from '../../src/cli/serve.js';
import { loadConfig } from '../../src/config/index.js';
import { InMemoryDriver } from '../../src/storage/inmemory.js';
import { tracingSettingsFromEnv } from '../../src/tracing/env.js';
import { ROOT, sleep, tempDir } from '../e2e/process.js';
import { startWharf } from '../e2e/servers.js';
import { OtlpReceiver } from './otlp-receiver.js';
import { otelEnv, pushImage } from './helpers.js';

const BIN = path.join(ROOT, 'bin', 'wharf.js');

/** `wharf serve` expected to stop at start-up: its exit code and standard error (killed after 20 s). */
function serveFails(env: Record<string, string>, config?: string): Promise<{ status: number | null; stderr: string }> {
  const args = [BIN, 'serve', ...(config ? [config] : [])];
  const base = { ...process.env, REGISTRY_STORAGE: 'inmemory', REGISTRY_HTTP_ADDR: '127.0.0.1:0' };
  const child = spawn(process.execPath, args, { env: { ...base, ...otelEnv(env) }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr });
    }),
  );
}

describe('tracing off', () => {
  it('no OTEL_* variables: no OpenTelemetry SDK is loaded, the driver and the handler are not wrapped', async () => {
    const { config } = loadConfig({ env: { REGISTRY_STORAGE: 'inmemory', REGISTRY_HTTP_ADDR: '127.0.0.1:0', REGISTRY_LOG_LEVEL: 'error' } });
    const settings = settingsFromConfig(config);
    settings.tracing = tracingSettingsFromEnv(otelEnv({}));
    assert.equal(settings.tracing, undefined);
    const started = await startRegistry(settings);
    try {
      assert.equal(started.tracing, undefined);
      assert.ok(started.registry.driver instanceof InMemoryDriver, `the registry uses the driver itself, not a wrapper: ${started.registry.driver.constructor.name}`);
      const r = await fetch(`${started.url}/v2/`, { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } });
      assert.equal(r.status, 200);
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('@opentelemetry/sdk-trace') || k.includes('exporter-trace-otlp'));
      assert.deepEqual(loaded, [], 'the SDK and exporter were never loaded');
      assert.equal(trace.getTracerProvider().getTracer('x').startSpan('probe').isRecording(), false, 'no tracer provider was registered');
    } finally {
      await started.close();
    }
  });

  describe('with an OTLP endpoint set but tracing turned off', { concurrency: true }, () => {
    let receiver: OtlpReceiver;
    before(async () => {
      receiver = await OtlpReceiver.start();
    });
    after(() => receiver.close());

    for (const off of [{ OTEL_TRACES_EXPORTER: 'none' }, { OTEL_SDK_DISABLED: 'true' }] as Record<string, string>[]) {
      it(`${Object.entries(off)[0].join('=')}: the receiver gets nothing, even at shutdown`, async () => {
        const wharf = await startWharf({ env: otelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '10', ...off }) });
        await pushImage(wharf.url, 'off/app', 'v1');
        await sleep(300);
        await wharf.stop();
        assert.doesNotMatch(wharf.logTail(50), /tracing on/);
        assert.deepEqual(receiver.exports, []);
      });
    }
  });
});

describe('bad tracing settings stop start-up', { concurrency: true }, () => {
  it('an unknown exporter names OTEL_TRACES_EXPORTER and what it may be', async () => {
    const r = await serveFails({ OTEL_TRACES_EXPORTER: 'bogus' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /OTEL_TRACES_EXPORTER: expected a comma-separated list of otlp, console or none, got "bogus"/);
    assert.doesNotMatch(r.stderr, /listening on/);
  });

  it('a sampler argument that is no probability names OTEL_TRACES_SAMPLER_ARG', async () => {
    const r = await serveFails({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /OTEL_TRACES_SAMPLER_ARG: expected a sampling probability from 0 to 1 for traceidratio, got "1.5"/);
  });

  for (const [key, yaml] of [
    ['reporting.bugsnag', 'reporting:\n  bugsnag:\n    apikey: abc123\n'],
    ['reporting.newrelic', 'reporting:\n  newrelic:\n    licensekey: abc123\n'],
  ]) {
    it(`${key} says Wharf replaces it with OpenTelemetry tracing and which variables to set`, async () => {
      const config = path.join(tempDir('tracing-reporting'), 'config.yml');
      fs.writeFileSync(config, `version: 0.1\nstorage:\n  inmemory: {}\nhttp:\n  addr: 127.0.0.1:0\n${yaml}`);
      const r = await serveFails({}, config);
      assert.equal(r.status, 1);
      assert.match(r.stderr, new RegExp(`${key.replace('.', '\\.')}: Wharf replaces Bugsnag and New Relic reporting with OpenTelemetry tracing`));
      assert.match(r.stderr, /set OTEL_EXPORTER_OTLP_ENDPOINT/);
    });
  }
});
