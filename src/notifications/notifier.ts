/**
 * Webhook notifications, Distribution's `notifications` section, with a durable queue:
 *
 *   request ──enqueue──▶ filter per endpoint ──group commit──▶ storage (/wharf/notifications/…)
 *                                                                 │
 *                              one loop per endpoint ◀────────────┘ ──POST──▶ endpoint
 *
 * `enqueue` resolves once the events are in storage, and the server answers only then, so a
 * crash or restart loses no event. Delivery is asynchronous and per endpoint; an event may be
 * delivered twice (a crash between the POST and the batch's removal) but always with its id.
 * lease.ts explains how instances sharing storage divide the queues.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { EndpointDelivery, type EndpointStats, type NotificationMetricsSink } from './delivery.js';
import { ignores, prepareEndpoints, type EndpointSettings } from './endpoint.js';
import type { Event, SourceRecord } from './event.js';
import { DEFAULT_LEASE_TIMING, InstanceLease, OrphanAdopter, type LeaseTiming } from './lease.js';
import { GroupCommit, QueueStore } from './queue.js';

export interface NotificationSettings {
  /** `notifications.events.includereferences`. */
  includeReferences: boolean;
  /** Every configured endpoint; disabled ones are skipped (and logged). */
  endpoints: EndpointSettings[];
  /** Internal, for tests (no configuration key): lease, scan and idle-poll periods in ms. */
  timing?: Partial<LeaseTiming> & { pollMs?: number };
}

export interface NotifierOptions {
  driver: StorageDriver;
  /** The queue directory this process owns (`queueInstanceId`). */
  instance: string;
  /** Distribution's `source.addr`: hostname:port. */
  sourceAddr: string;
  log: Logger;
  metrics?: NotificationMetricsSink;
}

/** What the server hands events to. */
export interface EventSink {
  readonly source: SourceRecord;
  readonly includeReferences: boolean;
  /** Resolves once the events are durable; rejects when storage refused them. */
  enqueue(events: Event[]): Promise<void>;
}

/** For src/metrics and tests: the queue this process owns and each endpoint's numbers. */
export interface NotificationStats {
  queue: string;
  endpoints: EndpointStats[];
}

const DEFAULT_POLL_MS = 30_000;

export class Notifier implements EventSink {
  readonly source: SourceRecord;
  private closed = false;
  private scanTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;

  private constructor(
    readonly includeReferences: boolean,
    private readonly deliveries: EndpointDelivery[],
    private readonly group: GroupCommit,
    private readonly lease: InstanceLease,
    private readonly adopter: OrphanAdopter,
    private readonly options: NotifierOptions,
  ) {
    this.source = { addr: options.sourceAddr, instanceID: randomUUID() };
  }

  /**
   * Claim the queue, start one delivery loop per enabled endpoint and the scan for gone
   * instances' queues. Undefined when no endpoint is enabled. Throws when the URL of an endpoint
   * is unusable or storage refuses the queue (start-up stops with the reason).
   */
  static async start(settings: NotificationSettings, options: NotifierOptions): Promise<Notifier | undefined> {
    const { log, driver, instance } = options;
    for (const e of settings.endpoints) if (e.disabled) log.info({ endpoint: e.name }, 'notifications: endpoint disabled, skipping');
    const endpoints = prepareEndpoints(settings.endpoints);
    if (endpoints.length === 0) return undefined;
    const timing = { ...DEFAULT_LEASE_TIMING, ...settings.timing };
    const store = new QueueStore(driver, instance);
    const lease = new InstanceLease(driver, instance, timing, log);
    try {
      await lease.acquire();
    } catch (err) {
      const where = pathFor({ kind: 'notificationQueue', instance });
      throw new Error(`notifications: cannot write the event queue at ${where} in ${driver.name} storage: ${(err as Error).message}`);
    }
    const deliveries = endpoints.map((e) => new EndpointDelivery(e, store, log, options.metrics, settings.timing?.pollMs ?? DEFAULT_POLL_MS));
    const byKey = new Map(deliveries.map((d) => [d.endpoint.key, d]));
    const group = new GroupCommit(store, (key, batch) => byKey.get(key)?.offer(batch));
    const adopter = new OrphanAdopter(driver, store, [...byKey.keys()], timing.leaseMs, log);
    const notifier = new Notifier(settings.includeReferences, deliveries, group, lease, adopter, options);
    for (const d of deliveries) {
      const { label, url, timeout, threshold, backoff, headers } = d.endpoint;
      // Header values may be credentials: only their names are logged.
      log.info({ endpoint: label, url, timeout, threshold, backoff, headers: Object.keys(headers), queue: instance }, 'notifications: configuring endpoint');
      d.start();
    }
    notifier.scheduleScans(timing.scanMs);
    return notifier;
  }

  enqueue(events: Event[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('notifications are shut down'));
    const byEndpoint = new Map<string, Event[]>();
    for (const d of this.deliveries) {
      const kept = events.filter((e) => !ignores(d.endpoint, e));
      if (kept.length === 0) continue;
      byEndpoint.set(d.endpoint.key, kept);
      for (const e of kept) this.options.metrics?.events.inc(d.endpoint.label, e.action);
    }
    return byEndpoint.size === 0 ? Promise.resolve() : this.group.add(byEndpoint);
  }

  stats(): NotificationStats {
    return { queue: this.options.instance, endpoints: this.deliveries.map((d) => ({ ...d.stats, statuses: { ...d.stats.statuses } })) };
  }

  /** Finish writes under way, stop delivering (what is left stays queued) and release the queue. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.scanTimer);
    await this.scanning;
    await this.group.idle();
    await Promise.all(this.deliveries.map((d) => d.stop()));
    await this.lease.release();
  }

  /** Scan for gone instances' queues now (at start: endpoints left from an earlier configuration are reported), then every `scanMs`. */
  private scheduleScans(scanMs: number): void {
    const run = async () => {
      try {
        const received = await this.adopter.scan();
        for (const d of this.deliveries) if (received.has(d.endpoint.key)) d.relist();
      } catch (err) {
        this.options.log.warn({ err }, 'notifications: could not look for the queues of gone instances');
      }
      if (this.closed) return;
      this.scanTimer = setTimeout(() => (this.scanning = run()), scanMs);
      this.scanTimer.unref();
    };
    this.scanning = this.adopter
      .countUnknown(this.options.instance)
      .catch(() => 0)
      .then(run);
  }
}
