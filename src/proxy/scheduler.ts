/**
 * When cached content expires, kept as Distribution keeps it so a data directory moves between the
 * two: `/scheduler-state.json` at the storage root maps "<name>@<digest>" to
 * {"Key": "<name>@<digest>", "ExpiryData": "<RFC 3339 time>", "EntryType": 0 (blob) | 1 (manifest)}.
 * The file is rewritten every few seconds when something changed, and on close; entries whose time
 * has passed (also while the registry was down) are expired at start-up.
 */
import type { Logger } from 'pino';
import { isNotFound, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';

export const ENTRY_BLOB = 0;
export const ENTRY_MANIFEST = 1;
export type EntryType = typeof ENTRY_BLOB | typeof ENTRY_MANIFEST;

interface Entry {
  key: string;
  expiry: number;
  type: EntryType;
}

export interface ExpiryHandlers {
  blob(name: string, digest: string): Promise<void>;
  manifest(name: string, digest: string): Promise<void>;
}

/** Node's timers cannot wait longer than this (about 24.8 days); a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ExpiryScheduler {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private saver: NodeJS.Timeout | undefined;
  private dirty = false;
  private running = false;
  private stopped = false;
  private saving: Promise<void> = Promise.resolve();
  private readonly path = pathFor({ kind: 'proxySchedulerState' });

  constructor(
    private readonly driver: StorageDriver,
    private readonly handlers: ExpiryHandlers,
    private readonly log: Logger,
    private readonly saveEveryMs = 5_000,
  ) {}

  /** Read the saved state; a file that cannot be parsed is reported and replaced at the next save. */
  async start(): Promise<void> {
    let text: string | undefined;
    try {
      text = (await this.driver.getContent(this.path)).toString('utf8');
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (text !== undefined) this.load(text);
    this.saver = setInterval(() => void this.save(), this.saveEveryMs);
    this.saver.unref();
    this.arm();
  }

  private load(text: string): void {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      this.log.error({ path: this.path, err: (err as Error).message }, 'proxy: the expiry state is not JSON; starting without it (cached content it listed will not expire)');
      return;
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return;
    for (const [key, v] of Object.entries(doc as Record<string, unknown>)) {
      const e = v as { Key?: unknown; ExpiryData?: unknown; EntryType?: unknown };
      const expiry = typeof e?.ExpiryData === 'string' ? Date.parse(e.ExpiryData) : NaN;
      const type = e?.EntryType;
      if (Number.isNaN(expiry) || (type !== ENTRY_BLOB && type !== ENTRY_MANIFEST) || parseKey(key) === null) {
        this.log.warn({ path: this.path, key }, 'proxy: ignoring an expiry entry that cannot be read');
        continue;
      }
      this.entries.set(key, { key, expiry, type });
    }
  }

  /** Expire `name@digest` after `ttl` ms; an entry already there is replaced (the content was fetched again). */
  add(name: string, digest: string, type: EntryType, ttl: number): void {
    if (this.stopped || !(ttl > 0)) return;
    const key = `${name}@${digest}`;
    this.entries.set(key, { key, expiry: Date.now() + ttl, type });
    this.dirty = true;
    this.arm();
  }

  /** Entries pending, for tests and logs. */
  get size(): number {
    return this.entries.size;
  }

  private arm(): void {
    if (this.stopped || this.running) return;
    clearTimeout(this.timer);
    let next = Infinity;
    for (const e of this.entries.values()) next = Math.min(next, e.expiry);
    if (next === Infinity) return;
    this.timer = setTimeout(() => void this.expireDue(), Math.min(Math.max(next - Date.now(), 0), MAX_TIMER_MS));
    this.timer.unref();
  }

  private async expireDue(): Promise<void> {
    this.running = true;
    try {
      for (;;) {
        const now = Date.now();
        const due = [...this.entries.values()].filter((e) => e.expiry <= now).sort((a, b) => a.expiry - b.expiry);
        if (due.length === 0 || this.stopped) break;
        for (const e of due) {
          if (this.stopped) break;
          // Re-added meanwhile (fetched again): the newer expiry stands.
          if (this.entries.get(e.key) !== e) continue;
          const [name, digest] = parseKey(e.key)!;
          try {
            await (e.type === ENTRY_BLOB ? this.handlers.blob(name, digest) : this.handlers.manifest(name, digest));
            this.log.info({ key: e.key, type: e.type === ENTRY_BLOB ? 'blob' : 'manifest' }, 'proxy: cached content expired and was removed');
          } catch (err) {
            this.log.error({ key: e.key, err }, 'proxy: removing expired content failed');
          }
          if (this.entries.get(e.key) === e) this.entries.delete(e.key);
          this.dirty = true;
        }
      }
    } finally {
      this.running = false;
      this.arm();
    }
  }

  /** Write the state if it changed. Writes never overlap. */
  save(): Promise<void> {
    this.saving = this.saving.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const doc: Record<string, { Key: string; ExpiryData: string; EntryType: number }> = {};
      for (const e of this.entries.values()) doc[e.key] = { Key: e.key, ExpiryData: new Date(e.expiry).toISOString(), EntryType: e.type };
      try {
        await this.driver.putContent(this.path, Buffer.from(JSON.stringify(doc)));
      } catch (err) {
        this.dirty = true;
        this.log.error({ path: this.path, err }, 'proxy: writing the expiry state failed; will retry');
      }
    });
    return this.saving;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.saver);
    await this.save();
  }
}

/** "library/alpine@sha256:…" → ["library/alpine", "sha256:…"], or null. */
function parseKey(key: string): [string, string] | null {
  const at = key.lastIndexOf('@');
  if (at <= 0 || !key.slice(at + 1).includes(':')) return null;
  return [key.slice(0, at), key.slice(at + 1)];
}
