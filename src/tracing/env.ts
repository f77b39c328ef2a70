/**
 * Tracing settings from the standard OpenTelemetry environment variables. Tracing is off unless
 * they ask for it: OTEL_TRACES_EXPORTER names otlp or console, or (with OTEL_TRACES_EXPORTER unset)
 * an OTLP endpoint is set. Distribution 3 instead exports to localhost:4318 whenever nothing is set
 * (distribution/distribution#4270); OTEL_TRACES_EXPORTER=none works the same in both.
 * This module loads no OpenTelemetry code: with tracing off nothing of it is ever imported.
 */
import { ConfigError } from '../config/errors.js';
import { EnvReader, orList, type Env } from './env-values.js';

export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export interface OtlpSettings {
  /** Where spans are POSTed (OTLP/HTTP with JSON bodies). */
  url: string;
  /** The variable the URL came from, for messages; `default` when none was set. */
  urlFrom: string;
  headers: Record<string, string>;
  timeoutMillis?: number;
  compression?: 'gzip' | 'none';
  /** PEM contents for HTTPS endpoints. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface TracingSettings {
  otlp?: OtlpSettings;
  /** OTEL_TRACES_EXPORTER includes console: spans are printed on standard output. */
  console: boolean;
  /** Resource attributes, service.name included. */
  resource: Record<string, string>;
  sampler: { name: SamplerName; ratio: number };
  /** Incoming W3C traceparent/tracestate headers are honoured (OTEL_PROPAGATORS has tracecontext). */
  traceContext: boolean;
  batch: { scheduledDelayMillis?: number; exportTimeoutMillis?: number; maxQueueSize?: number; maxExportBatchSize?: number };
}

const DEFAULT_OTLP_URL = 'http://localhost:4318/v1/traces';
const EXPORTERS = ['otlp', 'console', 'none'];
const PROPAGATORS = ['tracecontext', 'baggage', 'none'];

/** The settings, or undefined when tracing is off. Bad values throw one ConfigError naming every variable. */
export function tracingSettingsFromEnv(env: Env): TracingSettings | undefined {
  const r = new EnvReader(env);
  const settings = read(r);
  if (r.problems.length > 0) {
    throw new ConfigError(`OpenTelemetry environment variables cannot be used:\n  ${r.problems.join('\n  ')}`, r.problems);
  }
  return settings;
}

function read(r: EnvReader): TracingSettings | undefined {
  if (r.bool('OTEL_SDK_DISABLED')) return undefined;
  const exporters = r.list('OTEL_TRACES_EXPORTER', EXPORTERS);
  if (exporters?.includes('none') && exporters.length > 1) r.problem('OTEL_TRACES_EXPORTER', 'none alone, or exporters without none', exporters.join(','));
  const endpointSet = r.first('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined;
  const otlp = exporters ? exporters.includes('otlp') : endpointSet;
  const console = exporters?.includes('console') ?? false;
  if (!otlp && !console) return undefined;
  return {
    otlp: otlp ? readOtlp(r) : undefined,
    console,
    resource: readResource(r),
    sampler: readSampler(r),
    traceContext: readTraceContext(r),
    batch: {
      scheduledDelayMillis: r.integer('OTEL_BSP_SCHEDULE_DELAY', 0),
      exportTimeoutMillis: r.integer('OTEL_BSP_EXPORT_TIMEOUT', 1),
      maxQueueSize: r.integer('OTEL_BSP_MAX_QUEUE_SIZE', 1),
      maxExportBatchSize: r.integer('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1),
    },
  };
}

function readOtlp(r: EnvReader): OtlpSettings {
  const protocol = r.first('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL');
  if (protocol && protocol.value.toLowerCase() !== 'http/json') {
    // The spec's default is http/protobuf; some receivers take only that, so JSON is never sent in its name.
    r.problem(protocol.name, 'http/json (Wharf sends OTLP over HTTP with JSON bodies; grpc and http/protobuf are not supported)', protocol.value);
  }
  const specific = r.first('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const general = r.first('OTEL_EXPORTER_OTLP_ENDPOINT');
  let url = DEFAULT_OTLP_URL;
  let urlFrom = 'default';
  if (specific) {
    url = httpURL(r, specific.name, specific.value) ?? url;
    urlFrom = specific.name;
  } else if (general) {
    // The signal's path is appended to the base URL (the spec: http://collector:4318 → …/v1/traces).
    const base = httpURL(r, general.name, general.value);
    if (base) url = new URL(`${base.endsWith('/') ? base : `${base}/`}v1/traces`).toString();
    urlFrom = general.name;
  }
  const timeout = r.first('OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT');
  const compression = r.first('OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION');
  return {
    url,
    urlFrom,
    headers: { ...r.keyValues('OTEL_EXPORTER_OTLP_HEADERS', true), ...r.keyValues('OTEL_EXPORTER_OTLP_TRACES_HEADERS', true) },
    timeoutMillis: timeout ? r.integer(timeout.name, 1) : undefined,
    compression: compression ? r.choice(compression.name, ['gzip', 'none'] as const) : undefined,
    ca: r.file('OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CERTIFICATE'),
    cert: r.file('OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE'),
    key: r.file('OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY', 'OTEL_EXPORTER_OTLP_CLIENT_KEY'),
  };
}

function httpURL(r: EnvReader, name: string, value: string): string | undefined {
  try {
    const u = new URL(value);
    if (u.protocol === 'http:' || u.protocol === 'https:') return u.toString();
  } catch {
    /* reported below */
  }
  r.problem(name, 'an http:// or https:// URL', value);
  return undefined;
}

function readResource(r: EnvReader): Record<string, string> {
  const attributes = r.keyValues('OTEL_RESOURCE_ATTRIBUTES');
  // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES (the spec's order).
  const serviceName = r.string('OTEL_SERVICE_NAME') ?? attributes['service.name'] ?? 'wharf';
  return { ...attributes, 'service.name': serviceName };
}

function readSampler(r: EnvReader): TracingSettings['sampler'] {
  const name = r.choice('OTEL_TRACES_SAMPLER', SAMPLERS) ?? 'parentbased_always_on';
  let ratio = 1;
  const arg = r.string('OTEL_TRACES_SAMPLER_ARG');
  // The argument matters only to the ratio samplers; the spec has it ignored otherwise.
  if (arg !== undefined && name.endsWith('traceidratio')) {
    const n = Number(arg);
    if (Number.isFinite(n) && n >= 0 && n <= 1 && arg !== '') ratio = n;
    else r.problem('OTEL_TRACES_SAMPLER_ARG', `a sampling probability from 0 to 1 for ${name}`, arg);
  }
  return { name, ratio };
}

/** baggage is accepted and has no effect: Wharf makes no traced calls for baggage to travel on. */
function readTraceContext(r: EnvReader): boolean {
  const names = r.list('OTEL_PROPAGATORS', PROPAGATORS) ?? ['tracecontext', 'baggage'];
  if (names.includes('none') && names.length > 1) r.problem('OTEL_PROPAGATORS', `none alone, or ${orList(PROPAGATORS.slice(0, -1))}`, names.join(','));
  return names.includes('tracecontext');
}
