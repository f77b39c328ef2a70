/**
 * Wiring: configuration → storage driver → registry service → HTTP server.
 * Drivers come from a map, not from import side effects.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { makeLogger, type LogHookSettings } from './logging.js';
import { DEFAULT_CACHE_OPTIONS } from '../registry/cache.js';
import { purgeUploads } from '../registry/purge.js';
import { Registry } from '../registry/registry.js';
import { createApp } from '../server/app.js';
import { resolveTls, type TlsSettings } from '../server/tls/options.js';
import { listenTransport } from '../server/transport.js';
import { createAccessController, type AuthSettings } from '../server/auth/index.js';
import type { StorageDriver } from '../storage/driver.js';
import { makeDriver } from '../storage/drivers.js';
import type { NotificationMetricsSink, NotificationSettings, Notifier } from '../notifications/index.js';
import { healthChecksFrom, type HealthSettings, type HealthStatus } from '../health/index.js';
import type { WharfMetrics } from '../metrics/index.js';
import { instrumentDriver } from '../metrics/storage.js';
import { startDebugServer } from '../server/debug.js';
import type { RedisConnection } from '../config/redis.js';
import type { StorageMiddlewareEntry, WrappedStorage } from '../storage/middleware/index.js';
import type { ProxySettings, PullThroughCache } from '../proxy/index.js';
import { BlobFence } from '../registry/gc-fence.js';
import type { ManifestPolicy } from '../registry/manifests.js';
import type { OnlineCollector } from '../gc/online.js';
import type { TracingSettings } from '../tracing/env.js';
import type { Tracing } from '../tracing/provider.js';

export interface RegistrySettings {
  storage: { name: string; options: Record<string, unknown> };
  deleteEnabled: boolean;
  /** `storage.cache.blobdescriptor` is set (positive link answers are cached). */
  descriptorCache?: boolean;
  descriptorCacheEntries?: number;
  /** `storage.cache.blobdescriptor: redis`: the `redis` section's connection. */
  redisCache?: RedisConnection;
  http: {
    addr: string;
    /** `http.net`: `unix` makes `addr` a socket path. */
    net?: 'tcp' | 'unix';
    /** `http.draintimeout` in ms: on SIGTERM, requests in flight get this long to finish. */
    drainMs?: number;
    host?: string;
    prefix: string;
    relativeurls: boolean;
    headers: Record<string, string[]>;
    /** `http.tls` (absent or empty: cleartext). */
    tls?: TlsSettings;
    /** `http.http2.disabled`. */
    http2Disabled?: boolean;
    /** `http.h2c.enabled`. */
    h2c?: boolean;
    /** Internal, for tests (no configuration key): Let's Encrypt renewal window and check interval in ms. */
    acmeTiming?: { renewBeforeMs?: number; checkEveryMs?: number };
  };
  log: { level: string; formatter: string; accessLog: boolean; fields: Record<string, unknown>; hooks?: LogHookSettings[] };
  catalogMaxEntries: number;
  readOnly?: boolean;
  /** `storage.maintenance.uploadpurging`, durations in ms. */
  uploadPurging?: { enabled: boolean; age: number; interval: number; dryrun: boolean };
  urlsAllow: string[];
  urlsDeny: string[];
  /** `storage.redirect.disable`: drivers that can redirect blob GETs (s3) serve them instead. */
  redirectDisabled?: boolean;
  /** Distribution's `auth` section (htpasswd, silly or token); absent: no authentication. */
  auth?: AuthSettings;
  /** `http.debug`: the debug server (/debug/health, /debug/vars, Prometheus metrics); empty addr: none. */
  debug?: { addr: string; prometheus: { enabled: boolean; path: string } };
  /** The `health` section: periodic checks; the API answers 503 while one fails. */
  health?: HealthSettings;
  /** `middleware.storage` entries not disabled, in order (redirect, cloudfront). */
  storageMiddleware?: StorageMiddlewareEntry[];
  /** `storage.tag.concurrencylimit` (0: one per CPU). */
  tagConcurrency?: number;
  /** `validation.manifests.indexes`: which children of an index must exist. */
  indexChildren?: ManifestPolicy['indexChildren'];
  /** `storage.gc`: online garbage collection, durations in ms. */
  gc?: { enabled: boolean; interval: number; graceperiod: number };
  /** `proxy`: the pull-through cache's upstreams; absent: every repository is local. */
  proxy?: ProxySettings;
  /** The `notifications` section (with at least one endpoint); `instance` overrides the queue directory's name (tests). */
  notifications?: NotificationSettings & { instance?: string };
  /** OpenTelemetry tracing, from the OTEL_* environment variables; absent: off, and nothing is wrapped. */
  tracing?: TracingSettings;
}

export interface StartedRegistry {
  url: string;
  port: number;
  registry: Registry;
  log: Logger;
  /** The debug server's port, when `http.debug.addr` is set. */
  debugPort?: number;
  /** Present when metrics are on (`http.debug.prometheus.enabled` with a debug server). */
  metrics?: WharfMetrics;
  health?: HealthStatus;
  /** Present when the `proxy` section configures an upstream. */
  proxy?: PullThroughCache;
  /** Present when a `notifications` endpoint is enabled. */
  notifier?: Notifier;
  /** Present when `storage.gc.enabled`. */
  collector?: OnlineCollector;
  /** Present when tracing is on. */
  tracing?: Tracing;
  close(): Promise<void>;
}

export async function startRegistry(settings: RegistrySettings, log: Logger = makeLogger(settings.log)): Promise<StartedRegistry> {
  // TLS problems (unreadable files, unknown cipher suites) stop start-up before anything else starts.
  const tlsResolved = settings.http.tls ? resolveTls(settings.http.tls) : undefined;
  const metrics = await metricsFor(settings, log);
  const storage = await withMiddleware(
    await makeDriver(settings.storage.name, settings.storage.options, { log, redirect: !settings.redirectDisabled }),
    settings,
    log,
  );
  const tracing = settings.tracing ? await startTracing(settings.tracing, log) : undefined;
  const measured = metrics ? instrumentDriver(storage.driver, metrics.storageAction) : storage.driver;
  const driver = tracing ? tracing.traceDriver(measured) : measured;
  // Health checks are built (not started) before anything listens: a duplicate check stops start-up.
  const health = settings.health ? healthChecksFrom(settings.health, driver, settings.storage.name, log) : undefined;
  // Redis that cannot be used stops start-up here, with a message naming the key.
  const redis = settings.redisCache ? await (await import('../registry/redis-cache.js')).RedisDescriptorCache.open(settings.redisCache, log) : undefined;
  const fence = settings.gc?.enabled ? new BlobFence() : undefined;
  const registry = new Registry(driver, {
    deleteEnabled: settings.deleteEnabled,
    cache: {
      ...DEFAULT_CACHE_OPTIONS,
      descriptors: settings.descriptorCache ?? true,
      descriptorEntries: settings.descriptorCacheEntries ?? 10_000,
      shared: redis,
      observe: metrics && ((cache, hit) => metrics.cacheLookup(cache, hit)),
    },
    uploadObserver: metrics?.uploadObserver(),
    manifestPolicy: {
      allowURLs: settings.urlsAllow.map((r) => new RegExp(r)),
      denyURLs: settings.urlsDeny.map((r) => new RegExp(r)),
      indexChildren: settings.indexChildren,
    },
    tagConcurrency: settings.tagConcurrency,
    fence,
  });
  // A later start-up failure must not leave the Redis connection holding the process open.
  const failAfterRedis = async (err: unknown): Promise<never> => {
    await redis?.close();
    throw err;
  };
  const access = await createAccessController(settings.auth, log).catch(failAfterRedis);
  const notifier = await startNotifications(settings, driver, log, metrics?.notifications).catch(failAfterRedis);
  const proxy = settings.proxy ? await startProxy(settings.proxy, registry, log) : undefined;
  const handler = createApp({
    registry,
    log,
    access,
    health,
    metrics: metrics?.http,
    events: notifier,
    accessLog: settings.log.accessLog,
    proxy,
    options: {
      host: settings.http.host,
      relativeURLs: settings.http.relativeurls,
      prefix: settings.http.prefix,
      headers: settings.http.headers,
      catalogMaxEntries: settings.catalogMaxEntries,
      readOnly: settings.readOnly ?? false,
    },
  });
  const traced = tracing ? tracing.traceRequests(handler, { prefix: settings.http.prefix }) : handler;
  const running = await listenTransport(traced, settings.http.addr, {
    tls: tlsResolved,
    http2: !settings.http.http2Disabled,
    h2c: settings.http.h2c ?? false,
    log,
    acme: settings.http.acmeTiming,
    net: settings.http.net,
    drainMs: settings.http.drainMs,
  }).catch(failAfterRedis);
  const debug = settings.debug?.addr
    ? await startDebugServer({ addr: settings.debug.addr, log, health, metrics, prometheusPath: settings.debug.prometheus.path || '/metrics' }).catch(async (err) => {
        await running.close();
        return failAfterRedis(err);
      })
    : undefined;
  health?.start();
  const collector = fence && settings.gc ? await startCollector(driver, fence, registry, settings.gc, log, metrics) : undefined;
  const stopPurger = settings.uploadPurging?.enabled ? startUploadPurger(driver, settings.uploadPurging, log) : () => undefined;
  const hostPart = settings.http.addr.slice(0, settings.http.addr.lastIndexOf(':')) || '127.0.0.1';
  return {
    url:
      settings.http.net === 'unix'
        ? `unix:${settings.http.addr}`
        : `${running.scheme}://${hostPart === '0.0.0.0' || hostPart === '::' ? '127.0.0.1' : hostPart}:${running.port}`,
    port: running.port,
    registry,
    log,
    debugPort: debug?.port,
    metrics,
    health,
    proxy,
    collector,
    notifier,
    tracing,
    close: async () => {
      health?.stop();
      await collector?.stop();
      await debug?.close();
      stopPurger();
      storage.close();
      access?.close?.();
      await running.close();
      await notifier?.close(); // after the server: no request is still queueing events
      await proxy?.close(); // saves the expiry state
      await redis?.close();
      await tracing?.shutdown(); // last: exports the spans of the requests drained above
    },
  };
}

/** OpenTelemetry (loaded only when the OTEL_* variables turn tracing on). */
async function startTracing(settings: TracingSettings, log: Logger): Promise<Tracing> {
  return (await import('../tracing/provider.js')).startTracing(settings, log);
}

/** `storage.gc`: online garbage collection every interval (loaded only when enabled). */
async function startCollector(
  driver: StorageDriver,
  fence: BlobFence,
  registry: Registry,
  gc: { interval: number; graceperiod: number },
  log: Logger,
  metrics: WharfMetrics | undefined,
): Promise<OnlineCollector> {
  const { OnlineCollector } = await import('../gc/online.js');
  const collector = new OnlineCollector(driver, fence, { intervalMs: gc.interval, graceMs: gc.graceperiod }, log, {
    forgetBlobs: (digests) => registry.forgetBlobs(digests),
    onRun: (run) =>
      metrics?.gc.observeRun({ seconds: run.durationMs / 1000, blobsDeleted: run.blobsDeleted, bytesReclaimed: run.bytesReclaimed, manifestsDeleted: 0 }),
  });
  collector.start();
  log.info({ interval: gc.interval, graceperiod: gc.graceperiod }, 'online garbage collection on');
  return collector;
}

/** `proxy`: the pull-through cache (loaded only when configured). */
async function startProxy(settings: ProxySettings, registry: Registry, log: Logger): Promise<PullThroughCache> {
  const proxy = await import('../proxy/index.js');
  return proxy.PullThroughCache.start(settings, registry, log);
}

/** `notifications`: the queue lives in the registry's own storage, under /wharf/notifications/<hostname>-<port>. */
async function startNotifications(settings: RegistrySettings, driver: StorageDriver, log: Logger, metrics?: NotificationMetricsSink): Promise<Notifier | undefined> {
  if (!settings.notifications?.endpoints.some((e) => !e.disabled)) return undefined;
  const { Notifier, queueInstanceId, sourceAddress } = await import('../notifications/index.js');
  const host = hostname();
  const instance = settings.notifications.instance ?? queueInstanceId(host, settings.http.addr);
  return Notifier.start(settings.notifications, { driver, log, metrics, instance, sourceAddr: sourceAddress(host, settings.http.addr) });
}

/** The driver wrapped by `middleware.storage` (loaded only when configured). */
async function withMiddleware(driver: StorageDriver, settings: RegistrySettings, log: Logger): Promise<WrappedStorage> {
  if (!settings.storageMiddleware?.length) return { driver, close: () => undefined };
  const { applyStorageMiddleware } = await import('../storage/middleware/index.js');
  return applyStorageMiddleware(driver, settings.storageMiddleware, { log, redirect: !settings.redirectDisabled });
}

/** Metrics are collected only where they can be scraped: `http.debug.prometheus.enabled` with a debug server. */
async function metricsFor(settings: RegistrySettings, log: Logger): Promise<WharfMetrics | undefined> {
  if (!settings.debug?.prometheus.enabled) return undefined;
  if (!settings.debug.addr) {
    log.warn('http.debug.prometheus.enabled without http.debug.addr: metrics are served by the debug server, so none are collected');
    return undefined;
  }
  return new (await import('../metrics/index.js')).WharfMetrics();
}

/** Purge old uploads after a random delay (instances sharing storage spread out), then every interval. */
function startUploadPurger(driver: StorageDriver, p: { age: number; interval: number; dryrun: boolean }, log: Logger): () => void {
  let timer: NodeJS.Timeout;
  const run = async () => {
    const started = Date.now();
    try {
      const result = await purgeUploads(driver, new Date(Date.now() - p.age), p.dryrun);
      log.info({ purged: result.purged.length, errors: result.errors, dryrun: p.dryrun, ms: Date.now() - started }, 'upload purge finished');
    } catch (err) {
      log.error({ err }, 'upload purge failed');
    }
    timer = setTimeout(() => void run(), p.interval);
    timer.unref();
  };
  timer = setTimeout(() => void run(), Math.floor(Math.random() * Math.min(p.interval, 60 * 60 * 1000)));
  timer.unref();
  return () => clearTimeout(timer);
}
