/**
 * Delivery to one endpoint: its own loop and its own breaker, so a slow, hanging or failing
 * endpoint holds up nothing but itself, and never a request (requests only wait for the
 * durable write). Events go one per POST, in queue order, as Distribution sends them; a batch
 * leaves storage once all its events were delivered.
 */
import { STATUS_CODES } from 'node:http';
import type { Logger } from 'pino';
import { Breaker, postEnvelope, type Endpoint } from './endpoint.js';
import type { Event } from './event.js';
import { CorruptBatchError, type QueueStore, type QueuedBatch } from './queue.js';

/** Where delivery numbers go (src/metrics implements it; absent when metrics are off). */
export interface NotificationMetricsSink {
  events: { inc(endpoint: string, action: string): void };
  pending: { set(endpoint: string, n: number): void };
  status: { inc(endpoint: string, code: number | string): void };
  failures: { inc(endpoint: string): void };
}

export interface EndpointStats {
  name: string;
  url: string;
  /** Events queued in storage and not yet delivered. */
  pending: number;
  /** Events accepted (2xx/3xx) since start. */
  delivered: number;
  /** Attempts answered with another status. */
  failures: number;
  /** Attempts without an answer (refused, reset, timed out). */
  errors: number;
  /** Answers by status, "200 OK": count, as Distribution's endpoint metrics. */
  statuses: Record<string, number>;
  lastError?: string;
}

/** In-memory event bodies are kept for this many batches; later ones are read back when reached. */
const BODIES_IN_MEMORY = 16;

export class EndpointDelivery {
  readonly stats: EndpointStats;
  /** Batches in delivery order; the head may be partly delivered. */
  private readonly queue: QueuedBatch[] = [];
  private readonly known = new Set<string>();
  private deliveredInHead = 0;
  private readonly breaker: Breaker;
  private readonly stopping = new AbortController();
  private wakeUp: (() => void) | null = null;
  private listRequested = true;
  private lastListed = 0;
  private loop: Promise<void> | undefined;

  constructor(
    readonly endpoint: Endpoint,
    private readonly store: QueueStore,
    private readonly log: Logger,
    private readonly metrics: NotificationMetricsSink | undefined,
    /** How often an idle loop looks at storage for batches it was not told about. */
    private readonly pollMs: number,
  ) {
    this.breaker = new Breaker(endpoint.threshold, endpoint.backoff);
    this.stats = { name: endpoint.name, url: endpoint.url, pending: 0, delivered: 0, failures: 0, errors: 0, statuses: {} };
  }

  start(): void {
    this.loop ??= this.run().catch((err) => this.log.error({ err, endpoint: this.endpoint.label }, 'notifications: delivery stopped'));
  }

  /** A batch this process has just made durable. */
  offer(batch: QueuedBatch): void {
    if (this.known.has(batch.name)) return;
    const entry = this.queue.length < BODIES_IN_MEMORY ? batch : { name: batch.name, count: batch.count };
    this.insert(entry);
    this.wake();
  }

  /** Look at storage again (batches moved in from a gone instance). */
  relist(): void {
    this.listRequested = true;
    this.wake();
  }

  /** Stop at once: an attempt under way is abandoned (its event stays queued for the next start). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake();
    await this.loop;
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  private insert(batch: QueuedBatch): void {
    this.known.add(batch.name);
    // Sorted by name, but never ahead of the head: the loop may be delivering it.
    let i = this.queue.length;
    while (i > 1 && this.queue[i - 1]!.name > batch.name) i--;
    this.queue.splice(i, 0, batch);
    this.setPending(this.stats.pending + batch.count);
  }

  private dropHead(): void {
    const head = this.queue.shift()!;
    this.known.delete(head.name);
    this.setPending(this.stats.pending - (head.count - this.deliveredInHead));
    this.deliveredInHead = 0;
  }

  private setPending(n: number): void {
    this.stats.pending = Math.max(0, n);
    this.metrics?.pending.set(this.endpoint.label, this.stats.pending);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.queue.length === 0 && (this.listRequested || Date.now() - this.lastListed >= this.pollMs)) {
        this.listRequested = false;
        this.lastListed = Date.now();
        try {
          for (const b of await this.store.list(this.endpoint.key)) if (!this.known.has(b.name)) this.insert(b);
        } catch (err) {
          this.log.warn({ err, endpoint: this.endpoint.label }, 'notifications: could not list the queue; trying again later');
        }
      }
      const head = this.queue[0];
      if (!head) {
        // A relist asked for while the listing above was under way must not wait for the next poll.
        if (!this.listRequested) await this.pause(this.pollMs, true);
        continue;
      }
      const events = head.events ?? (await this.readBatch(head));
      if (events === undefined) continue; // unreadable for now; retried after a pause
      if (events === null) {
        this.dropHead(); // gone, or corrupt and moved aside
        continue;
      }
      head.events = events;
      while (this.deliveredInHead < events.length) {
        if (!(await this.deliver(events[this.deliveredInHead]!))) return;
        this.deliveredInHead++;
        this.setPending(this.stats.pending - 1);
      }
      try {
        await this.store.remove(this.endpoint.key, head.name);
      } catch (err) {
        // Left in storage: the next listing delivers it again (same ids).
        this.log.warn({ err, endpoint: this.endpoint.label, batch: head.name }, 'notifications: could not remove a delivered batch');
      }
      this.deliveredInHead = head.count; // all of it: nothing left to count as pending
      this.dropHead();
    }
  }

  /** The batch's events; null when it is gone or corrupt; undefined after a storage error (paused). */
  private async readBatch(head: QueuedBatch): Promise<Event[] | null | undefined> {
    try {
      return await this.store.read(this.endpoint.key, head.name);
    } catch (err) {
      if (err instanceof CorruptBatchError) {
        this.log.error({ endpoint: this.endpoint.label, path: err.path }, err.message);
        return null;
      }
      this.log.warn({ err, endpoint: this.endpoint.label, batch: head.name }, 'notifications: could not read a queued batch; trying again later');
      await this.pause(this.endpoint.backoff, false);
      return undefined;
    }
  }

  /** Deliver one event, retrying as the breaker allows; false when stopped first. */
  private async deliver(event: Event): Promise<boolean> {
    const label = this.endpoint.label;
    for (;;) {
      const wait = this.breaker.waitMs();
      if (wait > 0) await this.pause(wait, false);
      if (this.stopped) return false;
      const attempt = await postEnvelope(this.endpoint, [event], this.stopping.signal);
      if (this.stopped) return false; // an abandoned attempt is not the endpoint's failure
      if (attempt.status !== undefined) {
        const key = `${attempt.status} ${STATUS_CODES[attempt.status] ?? ''}`.trim();
        this.stats.statuses[key] = (this.stats.statuses[key] ?? 0) + 1;
        this.metrics?.status.inc(label, attempt.status);
      }
      if (attempt.ok) {
        if (this.breaker.consecutiveFailures > 0) this.log.info({ endpoint: label }, 'notifications: endpoint accepts events again');
        this.breaker.success();
        this.stats.delivered++;
        return true;
      }
      if (attempt.status === undefined) this.stats.errors++;
      else this.stats.failures++;
      this.stats.lastError = attempt.error;
      this.metrics?.failures.inc(label);
      const opened = this.breaker.failure();
      if (this.breaker.consecutiveFailures === 1) {
        this.log.warn({ endpoint: label, url: this.endpoint.url, error: attempt.error, event: event.id }, 'notifications: delivery failed; retrying');
      } else if (opened) {
        this.log.warn(
          { endpoint: label, failures: this.breaker.consecutiveFailures, backoffMs: this.endpoint.backoff, error: attempt.error },
          'notifications: endpoint keeps failing; one attempt per backoff from now on',
        );
      }
    }
  }

  /** Wait `ms` (or until stopped; `wakeable`: also until told of new work). */
  private pause(ms: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.stopping.signal.removeEventListener('abort', done);
        if (this.wakeUp === done) this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref(); // waiting to deliver never keeps the process alive by itself
      this.stopping.signal.addEventListener('abort', done);
      if (wakeable) this.wakeUp = done;
    });
  }

  private wake(): void {
    this.wakeUp?.();
  }
}
