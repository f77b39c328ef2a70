/**
 * Who delivers which queue when several instances share one storage.
 *
 * Each process owns the queue directory named by its instance id, `<hostname>-<port>`: the
 * same across restarts of one node, so a process restarted after a crash (kill -9 included)
 * resumes its own pending events at once. The owner rewrites its `lease` every `renewMs` with
 * a growing counter. Every `scanMs` each instance looks at the other directories: one whose
 * lease has not changed for `leaseMs` *as measured by the scanner's own clock* (so clock skew
 * between nodes and the storage does not matter), or was left `stopped`, or is missing, belongs
 * to an instance that is gone, and its batches are moved into the scanner's own queue and
 * delivered from there (a node replaced under a new hostname, a fleet scaled down).
 *
 * Nothing here can lose an event: batches are moved, never deleted unread, and batch names
 * never collide. Getting it wrong (two live processes with one id, a paused process taken for
 * dead) costs duplicates only, with the same event ids.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { isNotFound, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import type { QueueStore } from './queue.js';

export interface LeaseTiming {
  renewMs: number;
  leaseMs: number;
  scanMs: number;
}

export const DEFAULT_LEASE_TIMING: LeaseTiming = { renewMs: 10_000, leaseMs: 60_000, scanMs: 30_000 };

interface LeaseDoc {
  owner: string;
  host: string;
  pid: number;
  beat: number;
  renewed: string;
  stopped: boolean;
}

/** The queue directory name for this node: `<hostname>-<port>`, made a valid path segment. */
export function queueInstanceId(host: string, addr: string): string {
  const port = /:(\d+)$/.exec(addr)?.[1] ?? '0';
  // Never '.' or '..': the port part always follows.
  return `${host.slice(0, 100)}-${port}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** This process's claim on its queue directory, renewed until released. */
export class InstanceLease {
  private readonly token = randomUUID();
  private beat = 0;
  private timer: NodeJS.Timeout | undefined;
  private sharedWarned = false;

  constructor(
    private readonly driver: StorageDriver,
    readonly instance: string,
    private readonly timing: LeaseTiming,
    private readonly log: Logger,
  ) {}

  /** Write the lease (start-up fails when storage refuses it) and keep renewing it. */
  async acquire(): Promise<void> {
    const previous = await this.read();
    if (previous && !previous.stopped) {
      this.log.info({ queue: this.instance, previousHost: previous.host, previousPid: previous.pid }, 'notifications: resuming the queue of a previous process');
    }
    await this.write(false);
    this.timer = setInterval(() => void this.renew(), this.timing.renewMs);
    this.timer.unref();
  }

  /** Stop renewing and mark the queue stopped, so other instances may deliver what is left. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.write(true).catch((err) => this.log.warn({ err, queue: this.instance }, 'notifications: could not release the queue lease'));
  }

  private async renew(): Promise<void> {
    try {
      const current = await this.read();
      if (current && current.owner !== this.token && !current.stopped && !this.sharedWarned) {
        this.sharedWarned = true;
        this.log.warn(
          { queue: this.instance, otherHost: current.host, otherPid: current.pid },
          'notifications: another live process uses the same queue directory (same hostname and port); events may be delivered twice',
        );
      }
      await this.write(false);
    } catch (err) {
      this.log.warn({ err, queue: this.instance }, 'notifications: could not renew the queue lease');
    }
  }

  private async read(): Promise<LeaseDoc | null> {
    try {
      return JSON.parse((await this.driver.getContent(pathFor({ kind: 'notificationLease', instance: this.instance }))).toString()) as LeaseDoc;
    } catch {
      return null;
    }
  }

  private async write(stopped: boolean): Promise<void> {
    const doc: LeaseDoc = { owner: this.token, host: hostname(), pid: process.pid, beat: ++this.beat, renewed: new Date().toISOString(), stopped };
    await this.driver.putContent(pathFor({ kind: 'notificationLease', instance: this.instance }), Buffer.from(JSON.stringify(doc)));
  }
}

/** Finds the queues of instances that are gone and moves their batches into ours. */
export class OrphanAdopter {
  /** Each other instance's lease as last seen, and since when (our clock) it has not changed. */
  private readonly seen = new Map<string, { stamp: string; since: number }>();
  private readonly unknownReported = new Set<string>();

  constructor(
    private readonly driver: StorageDriver,
    private readonly own: QueueStore,
    private readonly endpointKeys: string[],
    private readonly leaseMs: number,
    private readonly log: Logger,
  ) {}

  /** One pass; returns the keys of our endpoints that received batches. */
  async scan(now = Date.now()): Promise<Set<string>> {
    const received = new Set<string>();
    let dirs: string[];
    try {
      dirs = await this.driver.list(pathFor({ kind: 'notificationsRoot' }));
    } catch (err) {
      if (isNotFound(err)) return received;
      throw err;
    }
    for (const dir of dirs) {
      const instance = dir.slice(dir.lastIndexOf('/') + 1);
      if (instance === this.own.instance || !(await this.isGone(instance, now))) continue;
      let left = 0;
      for (const key of this.endpointKeys) {
        for (const batch of await this.own.list(key, instance)) {
          try {
            await this.driver.move(
              pathFor({ kind: 'notificationBatch', instance, endpoint: key, batch: batch.name }),
              pathFor({ kind: 'notificationBatch', instance: this.own.instance, endpoint: key, batch: batch.name }),
            );
            received.add(key);
            this.log.info({ from: instance, endpoint: key, batch: batch.name, events: batch.count }, 'notifications: took over the queued events of a gone instance');
          } catch (err) {
            if (!isNotFound(err)) throw err; // another instance took it first
          }
        }
      }
      left += await this.countUnknown(instance);
      if (left === 0) await this.driver.delete(pathFor({ kind: 'notificationLease', instance })).catch(() => undefined);
    }
    return received;
  }

  private async isGone(instance: string, now: number): Promise<boolean> {
    let stamp: string;
    try {
      stamp = (await this.driver.getContent(pathFor({ kind: 'notificationLease', instance }))).toString();
    } catch (err) {
      if (isNotFound(err)) return true;
      throw err;
    }
    try {
      if ((JSON.parse(stamp) as LeaseDoc).stopped === true) return true;
    } catch {
      /* an unreadable lease is judged by whether it changes */
    }
    const previous = this.seen.get(instance);
    if (!previous || previous.stamp !== stamp) {
      this.seen.set(instance, { stamp, since: now });
      return false;
    }
    return now - previous.since >= this.leaseMs;
  }

  /** Queues left behind for endpoints no longer configured stay where they are; say so once. Returns their batch count. */
  async countUnknown(instance: string): Promise<number> {
    let keys: string[];
    try {
      keys = (await this.driver.list(pathFor({ kind: 'notificationEndpoints', instance }))).map((p) => p.slice(p.lastIndexOf('/') + 1));
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
    let left = 0;
    for (const key of keys.filter((k) => !this.endpointKeys.includes(k))) {
      const n = (await this.own.list(key, instance)).length;
      left += n;
      if (n > 0 && !this.unknownReported.has(`${instance}/${key}`)) {
        this.unknownReported.add(`${instance}/${key}`);
        this.log.warn({ queue: instance, endpoint: key, batches: n }, 'notifications: queued events for an endpoint that is no longer configured are left in storage');
      }
    }
    return left;
  }
}
