/**
 * The OpenTelemetry SDK set up from TracingSettings: resource, sampler, exporters, the W3C
 * propagator and Node's AsyncLocalStorage context manager (so a request's span is the parent of
 * the storage calls its handler makes, across awaits). Loaded only when tracing is on.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { diag, DiagLogLevel, type Attributes, type DiagLogger, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NodeTracerProvider,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type NodeTracerConfig,
  type Sampler,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import type { Logger } from 'pino';
import type { StorageDriver } from '../storage/driver.js';
import type { TracingSettings } from './env.js';
import { traceRequests, type RequestTracingOptions } from './http.js';
import { traceDriver } from './storage.js';
import { W3CTraceContext } from './trace-context.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
type Resource = NonNullable<NodeTracerConfig['resource']>;
type OtlpOptions = NonNullable<ConstructorParameters<typeof OTLPTraceExporter>[0]>;

/** How long shutdown waits for the last spans to reach the exporter. */
const FLUSH_LIMIT_MS = 5_000;

export interface Tracing {
  /** Wrap the API's request handler: one SERVER span per request. */
  traceRequests(handler: Handler, options: RequestTracingOptions): Handler;
  /** Wrap the storage driver: one span per call made while a request is traced. */
  traceDriver(driver: StorageDriver): StorageDriver;
  /** Export what is still buffered, then stop (at most FLUSH_LIMIT_MS). */
  shutdown(): Promise<void>;
}

export function startTracing(settings: TracingSettings, log: Logger): Tracing {
  const processors: SpanProcessor[] = [];
  if (settings.otlp) processors.push(new BatchSpanProcessor(otlpExporter(settings.otlp), settings.batch));
  if (settings.console) processors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()));
  const provider = new NodeTracerProvider({
    resource: staticResource({ 'service.version': wharfVersion(), 'telemetry.sdk.name': 'opentelemetry', 'telemetry.sdk.language': 'nodejs', ...settings.resource }),
    sampler: sampler(settings.sampler),
    spanProcessors: processors,
  });
  // Set only now: while constructing, the SDK re-reads OTEL_TRACES_SAMPLER* and would report values
  // already checked and replaced here (a ratio sampler without argument) as errors.
  diag.setLogger(diagToLog(log), DiagLogLevel.WARN);
  // null: no propagator at all (OTEL_PROPAGATORS=none), so a traceparent header is ignored.
  provider.register({ propagator: settings.traceContext ? new W3CTraceContext() : null });
  const tracer: Tracer = provider.getTracer('wharf', wharfVersion());
  const where = [settings.otlp && `${redacted(settings.otlp.url)} (OTLP/HTTP JSON)`, settings.console && 'standard output'].filter(Boolean).join(' and ');
  log.info(
    { 'service.name': settings.resource['service.name'], sampler: settings.sampler.name, ...(settings.sampler.name.endsWith('ratio') && { ratio: settings.sampler.ratio }) },
    `tracing on: spans go to ${where}`,
  );
  return {
    traceRequests: (handler, options) => traceRequests(handler, tracer, options),
    traceDriver: (driver) => traceDriver(driver, tracer),
    shutdown: async () => {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), FLUSH_LIMIT_MS)));
      const done = await Promise.race([provider.shutdown().then(() => 'done' as const, (err: unknown) => err), limit]);
      clearTimeout(timer);
      if (done === 'late') log.warn(`tracing: the last spans were not exported within ${FLUSH_LIMIT_MS / 1000} s; dropped`);
      else if (done !== 'done') log.warn({ err: done }, 'tracing: exporting the last spans failed');
    },
  };
}

function otlpExporter(otlp: NonNullable<TracingSettings['otlp']>): OTLPTraceExporter {
  const options: OtlpOptions = { url: otlp.url, headers: otlp.headers, timeoutMillis: otlp.timeoutMillis };
  if (otlp.compression) options.compression = otlp.compression as OtlpOptions['compression'];
  if (otlp.ca || otlp.cert || otlp.key) options.httpAgentOptions = { keepAlive: true, ca: otlp.ca, cert: otlp.cert, key: otlp.key };
  return new OTLPTraceExporter(options);
}

function sampler({ name, ratio }: TracingSettings['sampler']): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** A resource with fixed attributes (the SDK's own needs @opentelemetry/resources, not a dependency of Wharf). */
function staticResource(attributes: Attributes): Resource {
  return {
    attributes,
    merge: (other) => (other ? staticResource({ ...attributes, ...other.attributes }) : staticResource(attributes)),
    getRawAttributes: () => Object.entries(attributes),
  };
}

let cachedVersion: string | undefined;
function wharfVersion(): string {
  cachedVersion ??= (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return cachedVersion;
}

/** The endpoint without user:password, for the log. */
function redacted(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}

/**
 * The SDK's own warnings (a collector that refuses or cannot be reached) in Wharf's log. The same
 * message is logged at most once a minute, with how often it was repeated meanwhile.
 */
function diagToLog(log: Logger): DiagLogger {
  const last = new Map<string, { at: number; repeated: number }>();
  const write = (level: 'error' | 'warn') => (message: string, ...args: unknown[]) => {
    const text = [message, ...args].map(describe).join(' ');
    const seen = last.get(text);
    const now = Date.now();
    if (seen && now - seen.at < 60_000) {
      seen.repeated++;
      return;
    }
    last.set(text, { at: now, repeated: 0 });
    if (last.size > 100) last.delete(last.keys().next().value!);
    log[level]({ ...(seen?.repeated && { repeated: seen.repeated }) }, `tracing: ${text}`);
  };
  const ignore = () => undefined;
  return { error: write('error'), warn: write('warn'), info: ignore, debug: ignore, verbose: ignore };
}

function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  if (typeof value === 'string') return value.startsWith('{') ? (exportFailure(value) ?? value) : value;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/**
 * The SDK's error handler logs, as JSON ({"message": …, "stack": …, "data": the collector's answer}),
 * the errors of its span processors: spans that could not be exported.
 */
function exportFailure(text: string): string | undefined {
  try {
    const { message, data } = JSON.parse(text) as { message?: unknown; data?: unknown };
    if (typeof message !== 'string') return undefined;
    return `exporting spans failed: ${message}${typeof data === 'string' && data ? `: ${data.slice(0, 300)}` : ''}`;
  } catch {
    return undefined;
  }
}
