import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../../src/config/index.js';
import { tracingSettingsFromEnv } from '../../src/tracing/env.js';

const settings = (env: Record<string, string>) => tracingSettingsFromEnv(env);
const problems = (env: Record<string, string>): string[] => {
  try {
    tracingSettingsFromEnv(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return [...err.issues];
  }
  assert.fail('expected the settings to be refused');
};

describe('tracing settings from OTEL_* variables', () => {
  it('is off without variables, with only unrelated ones, with an empty endpoint, and with none or SDK disabled', () => {
    assert.equal(settings({}), undefined);
    assert.equal(settings({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }), undefined);
    assert.equal(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }), undefined, 'empty is unset');
    assert.equal(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }), undefined);
    assert.equal(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' }), undefined);
    // Settings for other parts of a shared environment are not judged while tracing is off.
    assert.equal(settings({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }), undefined);
  });

  it('an endpoint alone turns OTLP export on, the signal path appended to the base URL', () => {
    const s = settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })!;
    assert.equal(s.otlp?.url, 'http://collector:4318/v1/traces');
    assert.equal(s.otlp?.urlFrom, 'OTEL_EXPORTER_OTLP_ENDPOINT');
    assert.equal(s.console, false);
    assert.equal(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c.example/otlp/' })!.otlp?.url, 'https://c.example/otlp/v1/traces');
    // The traces endpoint is used as given, and wins.
    const t = settings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:9999/custom' })!;
    assert.equal(t.otlp?.url, 'http://b:9999/custom');
    assert.equal(t.otlp?.urlFrom, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  });

  it('OTEL_TRACES_EXPORTER: otlp (default endpoint localhost:4318), console, both; case-insensitive', () => {
    assert.equal(settings({ OTEL_TRACES_EXPORTER: 'otlp' })!.otlp?.url, 'http://localhost:4318/v1/traces');
    const c = settings({ OTEL_TRACES_EXPORTER: 'Console', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })!;
    assert.equal(c.console, true);
    assert.equal(c.otlp, undefined, 'an explicit exporter list decides; the endpoint alone does not add otlp');
    const both = settings({ OTEL_TRACES_EXPORTER: 'otlp, console' })!;
    assert.ok(both.otlp && both.console);
  });

  it('defaults: service wharf, parent-based always-on sampling, W3C trace context', () => {
    const s = settings({ OTEL_TRACES_EXPORTER: 'otlp' })!;
    assert.deepEqual(s.resource, { 'service.name': 'wharf' });
    assert.deepEqual(s.sampler, { name: 'parentbased_always_on', ratio: 1 });
    assert.equal(s.traceContext, true);
    assert.deepEqual(s.otlp?.headers, {});
  });

  it('resource attributes and service name, headers percent-decoded and merged with the traces ones winning', () => {
    const s = settings({
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs,deployment.environment.name=prod%20eu,host.name=h1',
      OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20abc,x-tenant=a',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=b',
    })!;
    assert.deepEqual(s.resource, { 'service.name': 'from-attrs', 'deployment.environment.name': 'prod eu', 'host.name': 'h1' });
    assert.deepEqual(s.otlp?.headers, { Authorization: 'Bearer abc', 'x-tenant': 'b' });
    assert.equal(settings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SERVICE_NAME: 'reg-1', OTEL_RESOURCE_ATTRIBUTES: 'service.name=x' })!.resource['service.name'], 'reg-1');
  });

  it('samplers and their argument', () => {
    assert.deepEqual(settings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' })!.sampler, {
      name: 'parentbased_traceidratio',
      ratio: 0.25,
    });
    assert.deepEqual(settings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'TraceIdRatio' })!.sampler, { name: 'traceidratio', ratio: 1 });
    assert.deepEqual(settings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'always_off', OTEL_TRACES_SAMPLER_ARG: 'ignored' })!.sampler, { name: 'always_off', ratio: 1 });
  });

  it('OTEL_PROPAGATORS: none or baggage alone ignore traceparent', () => {
    assert.equal(settings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_PROPAGATORS: 'none' })!.traceContext, false);
    assert.equal(settings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_PROPAGATORS: 'baggage' })!.traceContext, false);
    assert.equal(settings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_PROPAGATORS: 'tracecontext' })!.traceContext, true);
  });

  it('timeouts, compression, batch sizes and certificate files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-otel-'));
    fs.writeFileSync(path.join(dir, 'ca.pem'), 'CA');
    const s = settings({
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_TIMEOUT: '3000',
      OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'GZIP',
      OTEL_EXPORTER_OTLP_CERTIFICATE: path.join(dir, 'ca.pem'),
      OTEL_BSP_SCHEDULE_DELAY: '0',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '64',
    })!;
    assert.equal(s.otlp?.timeoutMillis, 3000);
    assert.equal(s.otlp?.compression, 'gzip');
    assert.equal(s.otlp?.ca?.toString(), 'CA');
    assert.deepEqual(s.batch, { scheduledDelayMillis: 0, exportTimeoutMillis: undefined, maxQueueSize: undefined, maxExportBatchSize: 64 });
  });

  it('every bad value is reported at once, naming the variable and what was expected', () => {
    assert.deepEqual(problems({ OTEL_TRACES_EXPORTER: 'bogus' }), ['OTEL_TRACES_EXPORTER: expected a comma-separated list of otlp, console or none, got "bogus"']);
    assert.deepEqual(problems({ OTEL_TRACES_EXPORTER: 'zipkin,otlp' }), ['OTEL_TRACES_EXPORTER: expected a comma-separated list of otlp, console or none, got "zipkin"']);
    assert.deepEqual(problems({ OTEL_SDK_DISABLED: 'yes' }), ['OTEL_SDK_DISABLED: expected true or false, got "yes"']);
    assert.deepEqual(
      problems({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_TRACES_SAMPLER: 'xray',
        OTEL_PROPAGATORS: 'b3',
        OTEL_EXPORTER_OTLP_TIMEOUT: '-1',
        OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd',
        OTEL_RESOURCE_ATTRIBUTES: 'novalue',
        OTEL_BSP_MAX_QUEUE_SIZE: 'lots',
      }),
      [
        'OTEL_EXPORTER_OTLP_PROTOCOL: expected http/json (Wharf sends OTLP over HTTP with JSON bodies; grpc and http/protobuf are not supported), got "grpc"',
        'OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL, got "collector:4318"',
        'OTEL_EXPORTER_OTLP_TIMEOUT: expected a whole number of at least 1, got "-1"',
        'OTEL_EXPORTER_OTLP_COMPRESSION: expected gzip or none, got "zstd"',
        'OTEL_RESOURCE_ATTRIBUTES: expected comma-separated key=value pairs with percent-encoded values (entry 1 is not one), got "novalue"',
        'OTEL_TRACES_SAMPLER: expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio, got "xray"',
        'OTEL_PROPAGATORS: expected a comma-separated list of tracecontext, baggage or none, got "b3"',
        'OTEL_BSP_MAX_QUEUE_SIZE: expected a whole number of at least 1, got "lots"',
      ],
    );
    assert.deepEqual(problems({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }), [
      'OTEL_TRACES_SAMPLER_ARG: expected a sampling probability from 0 to 1 for traceidratio, got "half"',
    ]);
    assert.deepEqual(problems({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_CLIENT_KEY: '/nonexistent/key.pem' }), [
      'OTEL_EXPORTER_OTLP_CLIENT_KEY: expected a readable file (ENOENT), got "/nonexistent/key.pem"',
    ]);
  });

  it('a bad header entry is reported without its value (headers carry credentials)', () => {
    const [message] = problems({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20ok,secret-token-without-key' });
    assert.equal(message, 'OTEL_EXPORTER_OTLP_HEADERS: expected comma-separated key=value pairs with percent-encoded values (entry 2 is not one)');
    assert.doesNotMatch(message, /secret/);
  });
});
