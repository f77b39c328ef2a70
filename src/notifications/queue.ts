/**
 * The durable event queue of one instance, in the registry's own storage (any driver):
 * `/wharf/notifications/<instance>/endpoints/<endpoint>/<batch>`, one file per batch and
 * endpoint, holding `{"events":[…]}`. A batch is written whole (`putContent` is atomic) and
 * deleted once every event in it was delivered, so a crash at any point leaves each event
 * either queued or delivered, never lost; the worst case is a re-delivery with the same id.
 *
 * Batch names sort in the order they were written: `<ms, 13 digits>-<counter>-<writer>-<count>`.
 * The writer token keeps two processes that share a directory from ever overwriting each
 * other's files, and the event count lets the pending gauge be known from a listing alone.
 */
import { randomBytes } from 'node:crypto';
import { isNotFound, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import type { Event } from './event.js';

/** A queued batch; `events` is absent until read back (batches found by listing are read lazily). */
export interface QueuedBatch {
  name: string;
  count: number;
  events?: Event[];
}

const BATCH_NAME = /^(\d{13})-(\d{9})-([0-9a-f]{8})-(\d+)$/;
/** Larger groups are split so no one file (or re-delivery after a crash) gets huge. */
export const MAX_BATCH_EVENTS = 500;

export class QueueStore {
  private readonly writer = randomBytes(4).toString('hex');
  private lastMs = 0;
  private counter = 0;

  constructor(
    private readonly driver: StorageDriver,
    readonly instance: string,
  ) {}

  /** A fresh batch name, after every name this process gave before (even if the clock steps back). */
  nextName(count: number): string {
    const now = Math.max(Date.now(), this.lastMs);
    this.lastMs = now;
    this.counter = (this.counter + 1) % 1e9;
    return `${String(now).padStart(13, '0')}-${String(this.counter).padStart(9, '0')}-${this.writer}-${count}`;
  }

  async write(endpoint: string, batch: QueuedBatch & { events: Event[] }): Promise<void> {
    const path = pathFor({ kind: 'notificationBatch', instance: this.instance, endpoint, batch: batch.name });
    await this.driver.putContent(path, Buffer.from(JSON.stringify({ events: batch.events })));
  }

  /** The endpoint's batches, oldest first. */
  async list(endpoint: string, instance = this.instance): Promise<QueuedBatch[]> {
    let paths: string[];
    try {
      paths = await this.driver.list(pathFor({ kind: 'notificationEndpointQueue', instance, endpoint }));
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
    const out: QueuedBatch[] = [];
    for (const p of paths) {
      const name = p.slice(p.lastIndexOf('/') + 1);
      const m = BATCH_NAME.exec(name);
      if (m) out.push({ name, count: Number(m[4]) });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * The batch's events; null when it is gone (delivered or taken over elsewhere). A file that
   * does not parse cannot be delivered: it is moved aside to `corrupt/` and CorruptBatchError thrown.
   */
  async read(endpoint: string, name: string): Promise<Event[] | null> {
    const path = pathFor({ kind: 'notificationBatch', instance: this.instance, endpoint, batch: name });
    let content: Buffer;
    try {
      content = await this.driver.getContent(path);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
    try {
      const doc = JSON.parse(content.toString('utf8')) as { events?: unknown };
      if (Array.isArray(doc.events)) return doc.events as Event[];
    } catch {
      /* handled below */
    }
    await this.driver
      .move(path, pathFor({ kind: 'notificationCorruptBatch', instance: this.instance, endpoint, batch: name }))
      .catch(() => undefined);
    throw new CorruptBatchError(path);
  }

  /** Forget a delivered batch (already gone is fine). */
  async remove(endpoint: string, name: string): Promise<void> {
    try {
      await this.driver.delete(pathFor({ kind: 'notificationBatch', instance: this.instance, endpoint, batch: name }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

export class CorruptBatchError extends Error {
  constructor(readonly path: string) {
    super(`notification batch ${path} is not a JSON event envelope: moved to corrupt/`);
  }
}

/**
 * Group commit: callers wait until their events are in storage, and events that arrive while
 * a write is under way go together into the next one. One request alone pays one write; a
 * hundred concurrent requests pay about two, not a hundred.
 */
export class GroupCommit {
  private pending = new Map<string, Event[]>();
  private waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  private running: Promise<void> | null = null;

  constructor(
    private readonly store: QueueStore,
    /** Told about each batch once it is durable. */
    private readonly written: (endpoint: string, batch: QueuedBatch) => void,
  ) {}

  /** Resolves once every event is durable in its endpoint's queue; rejects when storage refused. */
  add(byEndpoint: Map<string, Event[]>): Promise<void> {
    for (const [key, events] of byEndpoint) {
      const list = this.pending.get(key);
      if (list) list.push(...events);
      else this.pending.set(key, [...events]);
    }
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.running ??= this.drain();
    return done;
  }

  /** Resolves when nothing is being written. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    // Let callers of this same tick join the first write.
    await Promise.resolve();
    while (this.pending.size > 0) {
      const groups = this.pending;
      const waiters = this.waiters;
      this.pending = new Map();
      this.waiters = [];
      const batches: Array<[string, QueuedBatch & { events: Event[] }]> = [];
      for (const [key, events] of groups) {
        for (let i = 0; i < events.length; i += MAX_BATCH_EVENTS) {
          const part = events.slice(i, i + MAX_BATCH_EVENTS);
          batches.push([key, { name: this.store.nextName(part.length), count: part.length, events: part }]);
        }
      }
      const results = await Promise.allSettled(batches.map(([key, b]) => this.store.write(key, b)));
      batches.forEach(([key, b], i) => {
        if (results[i]!.status === 'fulfilled') this.written(key, b);
      });
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      for (const w of waiters) {
        if (failed) w.reject(failed.reason);
        else w.resolve();
      }
    }
    this.running = null;
  }
}
