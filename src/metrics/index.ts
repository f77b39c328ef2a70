/**
 * Wharf's Prometheus metrics (`http.debug.prometheus`), one prom-client Registry per running
 * registry, served by the debug server (src/server/debug.ts). Names follow Distribution's
 * (namespace `registry`) so its dashboards keep working:
 *
 *   registry_http_requests_total{handler,method,code}        requests answered, by route
 *   registry_http_request_duration_seconds{handler,method}   latency histogram
 *   registry_http_request_size_bytes{handler}                body bytes received (histogram; _sum = bytes in)
 *   registry_http_response_size_bytes{handler}               body bytes sent (histogram; _sum = bytes out)
 *   registry_http_in_flight_requests{handler}                requests being served now
 *   registry_storage_action_seconds{driver,action}           storage driver calls
 *   registry_storage_cache_total{type}                       blob-descriptor cache Request/Hit/Miss (as Distribution)
 *   registry_manifest_cache_total{cache,type}                Wharf's manifest caches (content, revisions) Request/Hit/Miss
 *   registry_uploads_in_flight, registry_uploads_started_total, registry_uploads_completed_total
 *   registry_notifications_{events_total,pending,status_total,failures_total}{endpoint,…}
 *   registry_gc_{runs_total,duration_seconds,blobs_deleted_total,bytes_reclaimed_total,manifests_deleted_total}
 *   plus prom-client's process_* and nodejs_* runtime metrics.
 *
 * With metrics off nothing is created and nothing is wrapped: callers hold `undefined`.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { HttpMetrics } from './http.js';

/** Distribution's (docker/go-metrics) latency buckets for HTTP requests. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60];
/** 1 KiB … 2 GiB by powers of two, as Distribution's size histograms. */
const SIZE_BUCKETS = Array.from({ length: 22 }, (_, i) => 1024 * 2 ** i);

/**
 * What the notifications module reports, per endpoint (the endpoint's `name`, or its URL):
 *
 *   metrics?.notifications.events.inc(endpoint, action)     an event was queued ('push', 'pull', 'delete', …)
 *   metrics?.notifications.pending.set(endpoint, n)         events waiting in that endpoint's queue now
 *   metrics?.notifications.status.inc(endpoint, code)       a delivery got this HTTP status
 *   metrics?.notifications.failures.inc(endpoint)           a delivery failed (error or non-2xx)
 *
 * It receives this object (or undefined when metrics are off) from the wiring in src/cli/start.ts:
 * `startRegistry` creates `StartedRegistry.metrics`; pass `metrics?.notifications` to the notifier.
 */
export interface NotificationMetrics {
  events: { inc(endpoint: string, action: string): void };
  pending: { set(endpoint: string, n: number): void };
  status: { inc(endpoint: string, code: number | string): void };
  failures: { inc(endpoint: string): void };
}

/** One garbage-collection run (mark and sweep), for `metrics.gc.observeRun`. */
export interface GcRun {
  seconds: number;
  blobsDeleted: number;
  bytesReclaimed: number;
  manifestsDeleted: number;
}

export class WharfMetrics {
  readonly registry = new Registry();
  readonly http: HttpMetrics;
  /** Latency of storage driver calls (used by `instrumentDriver`). */
  readonly storageAction: Histogram<'driver' | 'action'>;
  readonly notifications: NotificationMetrics;
  readonly uploads: { inFlight: Gauge; started: Counter; completed: Counter };
  readonly gc: { observeRun(run: GcRun): void };
  private readonly cacheRequests: Counter<'type'>;
  private readonly manifestCacheRequests: Counter<'cache' | 'type'>;

  constructor() {
    const registers = [this.registry];
    this.http = new HttpMetrics({
      requests: new Counter({ name: 'registry_http_requests_total', help: 'Total number of HTTP requests made.', labelNames: ['handler', 'method', 'code'], registers }),
      duration: new Histogram({ name: 'registry_http_request_duration_seconds', help: 'The HTTP request latencies in seconds.', labelNames: ['handler', 'method'], buckets: DURATION_BUCKETS, registers }),
      requestSize: new Histogram({ name: 'registry_http_request_size_bytes', help: 'The HTTP request body sizes in bytes.', labelNames: ['handler'], buckets: SIZE_BUCKETS, registers }),
      responseSize: new Histogram({ name: 'registry_http_response_size_bytes', help: 'The HTTP response body sizes in bytes.', labelNames: ['handler'], buckets: SIZE_BUCKETS, registers }),
      inFlight: new Gauge({ name: 'registry_http_in_flight_requests', help: 'The in-flight HTTP requests.', labelNames: ['handler'], registers }),
    });
    this.storageAction = new Histogram({ name: 'registry_storage_action_seconds', help: 'The number of seconds that the storage action takes.', labelNames: ['driver', 'action'], registers });
    this.cacheRequests = new Counter({ name: 'registry_storage_cache_total', help: 'The number of blob-descriptor cache requests, hits and misses.', labelNames: ['type'], registers });
    this.manifestCacheRequests = new Counter({
      name: 'registry_manifest_cache_total',
      help: 'The number of manifest cache requests (content by digest, revision links), hits and misses.',
      labelNames: ['cache', 'type'],
      registers,
    });
    this.uploads = {
      inFlight: new Gauge({ name: 'registry_uploads_in_flight', help: 'Blob uploads receiving data in this process now (PATCH or final PUT).', registers }),
      started: new Counter({ name: 'registry_uploads_started_total', help: 'Blob upload sessions started.', registers }),
      completed: new Counter({ name: 'registry_uploads_completed_total', help: 'Blob upload sessions completed into a blob.', registers }),
    };
    this.notifications = notificationMetrics(registers);
    this.gc = gcMetrics(registers);
    collectDefaultMetrics({ register: this.registry });
  }

  /** Count one lookup in one of the registry's caches (src/registry/cache.ts). */
  cacheLookup(cache: 'blobdescriptor' | 'revisions' | 'manifests', hit: boolean): void {
    const type = hit ? 'Hit' : 'Miss';
    if (cache === 'blobdescriptor') {
      this.cacheRequests.inc({ type: 'Request' });
      this.cacheRequests.inc({ type });
      return;
    }
    const name = cache === 'manifests' ? 'content' : cache;
    this.manifestCacheRequests.inc({ cache: name, type: 'Request' });
    this.manifestCacheRequests.inc({ cache: name, type });
  }

  /** What the upload store reports to (src/registry/uploads.ts's UploadObserver). */
  uploadObserver(): { started(): void; completed(): void; writing(delta: 1 | -1): void } {
    const u = this.uploads;
    return { started: () => u.started.inc(), completed: () => u.completed.inc(), writing: (delta) => u.inFlight.inc(delta) };
  }

  /** The text exposition format, for the debug server. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function notificationMetrics(registers: Registry[]): NotificationMetrics {
  const events = new Counter({ name: 'registry_notifications_events_total', help: 'The number of events queued, by action.', labelNames: ['type', 'endpoint'], registers });
  const pending = new Gauge({ name: 'registry_notifications_pending', help: 'The events waiting in an endpoint queue.', labelNames: ['endpoint'], registers });
  const status = new Counter({ name: 'registry_notifications_status_total', help: 'Deliveries by HTTP status code.', labelNames: ['code', 'endpoint'], registers });
  const failures = new Counter({ name: 'registry_notifications_failures_total', help: 'Deliveries that failed (error or non-2xx status).', labelNames: ['endpoint'], registers });
  return {
    events: { inc: (endpoint, action) => events.inc({ endpoint, type: action }) },
    pending: { set: (endpoint, n) => pending.set({ endpoint }, n) },
    status: { inc: (endpoint, code) => status.inc({ endpoint, code: String(code) }) },
    failures: { inc: (endpoint) => failures.inc({ endpoint }) },
  };
}

function gcMetrics(registers: Registry[]): WharfMetrics['gc'] {
  const runs = new Counter({ name: 'registry_gc_runs_total', help: 'Garbage-collection runs finished.', registers });
  const duration = new Histogram({
    name: 'registry_gc_duration_seconds',
    help: 'Garbage-collection run time.',
    buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600],
    registers,
  });
  const blobs = new Counter({ name: 'registry_gc_blobs_deleted_total', help: 'Blobs deleted by garbage collection.', registers });
  const bytes = new Counter({ name: 'registry_gc_bytes_reclaimed_total', help: 'Bytes of blobs deleted by garbage collection.', registers });
  const manifests = new Counter({ name: 'registry_gc_manifests_deleted_total', help: 'Manifests deleted by garbage collection.', registers });
  return {
    observeRun: (run) => {
      runs.inc();
      duration.observe(run.seconds);
      blobs.inc(run.blobsDeleted);
      bytes.inc(run.bytesReclaimed);
      manifests.inc(run.manifestsDeleted);
    },
  };
}
