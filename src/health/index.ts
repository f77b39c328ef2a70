/**
 * Periodic health checks (the `health` section), as Distribution runs them: each check repeats
 * every `interval` (default 10 s); with `threshold` N > 0 it is reported failing after N
 * consecutive failures, otherwise after one; one success clears it. While any check is reported
 * failing the API answers 503 (src/server/app.ts) and `/debug/health` lists the failures.
 *
 * Unlike Distribution, the first run starts at once rather than one interval after start-up, and
 * every run has a deadline (the check's `timeout`, or its interval when it has none), so a hung
 * backend shows as failing instead of freezing the last answer. Runs of one check never overlap.
 */
import type { Logger } from 'pino';
import type { StorageDriver } from '../storage/driver.js';
import { fileCheck, httpCheck, storageDriverCheck, tcpCheck, type Check } from './checks.js';

export const DEFAULT_INTERVAL_MS = 10_000;

/** The `health` section, durations in ms (0: the default). */
export interface HealthSettings {
  storagedriver: { enabled: boolean; interval: number; threshold: number };
  file: readonly { file: string; interval: number; threshold: number }[];
  http: readonly { uri: string; headers: Record<string, readonly string[]>; statuscode: number; timeout: number; interval: number; threshold: number }[];
  tcp: readonly { addr: string; timeout: number; interval: number; threshold: number }[];
}

/** What the API gate and the debug server read. */
export interface HealthStatus {
  /** No check is reported failing. */
  readonly healthy: boolean;
  /** Check name → error of every check reported failing (`{}` when healthy). */
  failures(): Record<string, string>;
}

interface Schedule {
  intervalMs: number;
  threshold: number;
  /** A run taking longer fails. */
  deadlineMs: number;
}

class PeriodicCheck {
  /** The error reported (past the threshold), or null. */
  reported: string | null = null;
  /** Why the last run failed, when the check says more than its message (for the log). */
  cause: string | undefined;
  private failuresInARow = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly name: string,
    private readonly check: Check,
    private readonly schedule: Schedule,
    private readonly onChange: (check: PeriodicCheck, was: string | null) => void,
  ) {}

  start(): void {
    this.next(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private next(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.run(), delay);
    this.timer.unref(); // checks never keep the process alive
  }

  private async run(): Promise<void> {
    let error: string | null = null;
    this.cause = undefined;
    try {
      await withDeadline(this.check(), this.schedule.deadlineMs);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      const cause = (err as Error)?.cause;
      if (cause !== undefined) this.cause = cause instanceof Error ? cause.message : String(cause);
    }
    if (this.stopped) return;
    this.update(error);
    this.next(this.schedule.intervalMs);
  }

  private update(error: string | null): void {
    const was = this.reported;
    if (error === null) this.failuresInARow = 0;
    else this.failuresInARow++;
    const threshold = Math.max(1, this.schedule.threshold);
    this.reported = error !== null && this.failuresInARow >= threshold ? error : null;
    if (was !== this.reported) this.onChange(this, was);
  }
}

function withDeadline(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

export class HealthChecks implements HealthStatus {
  private readonly checks = new Map<string, PeriodicCheck>();
  /** Config key of each check, to name both keys of a duplicate. */
  private readonly keys = new Map<string, string>();
  private failing = 0;

  constructor(private readonly log: Logger) {}

  get healthy(): boolean {
    return this.failing === 0;
  }

  get size(): number {
    return this.checks.size;
  }

  failures(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const c of this.checks.values()) if (c.reported !== null) out[c.name] = c.reported;
    return out;
  }

  /** Add a check; `key` is its configuration key, for the message when two checks share a name. */
  add(name: string, key: string, check: Check, schedule: Schedule): void {
    const other = this.keys.get(name);
    if (other !== undefined) throw new Error(`${key}: a second health check of ${JSON.stringify(name)} (${other} has it already)`);
    this.keys.set(name, key);
    this.checks.set(name, new PeriodicCheck(name, check, schedule, (c, was) => this.changed(c, was)));
  }

  start(): void {
    for (const c of this.checks.values()) c.start();
  }

  stop(): void {
    for (const c of this.checks.values()) c.stop();
  }

  private changed(c: PeriodicCheck, was: string | null): void {
    if (was === null) this.failing++;
    if (c.reported === null) this.failing--;
    if (c.reported === null) this.log.info({ check: c.name }, 'health check passes again');
    else if (was === null) this.log.warn({ check: c.name, error: c.reported, cause: c.cause }, 'health check failing: the API answers 503 until it passes');
    else this.log.warn({ check: c.name, error: c.reported, cause: c.cause }, 'health check still failing');
  }
}

/** The checks the `health` section asks for (not started); undefined when it asks for none. */
export function healthChecksFrom(settings: HealthSettings, driver: StorageDriver, storageName: string, log: Logger): HealthChecks | undefined {
  const checks = new HealthChecks(log);
  // HTTP and TCP checks time out by themselves (with a clearer message); the run's deadline is a safety net.
  const schedule = (s: { interval: number; threshold: number; timeout?: number }): Schedule & { timeoutMs: number } => {
    const intervalMs = s.interval > 0 ? s.interval : DEFAULT_INTERVAL_MS;
    const timeoutMs = s.timeout && s.timeout > 0 ? s.timeout : intervalMs;
    return { intervalMs, threshold: s.threshold, timeoutMs, deadlineMs: s.timeout === undefined ? timeoutMs : timeoutMs + 1000 };
  };
  const sd = settings.storagedriver;
  if (sd.enabled) {
    const name = `storagedriver_${storageName}`;
    checks.add(name, 'health.storagedriver', storageDriverCheck(driver), schedule(sd));
    log.info({ check: name, interval: schedule(sd).intervalMs, threshold: sd.threshold }, 'configuring storage driver health check');
  }
  settings.file.forEach((f, i) => {
    checks.add(f.file, `health.file[${i}].file`, fileCheck(f.file), schedule(f));
    log.info({ check: f.file, interval: schedule(f).intervalMs, threshold: f.threshold }, 'configuring file health check');
  });
  settings.http.forEach((h, i) => {
    const s = schedule(h);
    checks.add(h.uri, `health.http[${i}].uri`, httpCheck(h.uri, h.statuscode || 200, s.timeoutMs, h.headers), s);
    log.info({ check: h.uri, interval: s.intervalMs, threshold: h.threshold, statuscode: h.statuscode || 200 }, 'configuring HTTP health check');
  });
  settings.tcp.forEach((t, i) => {
    const s = schedule(t);
    checks.add(t.addr, `health.tcp[${i}].addr`, tcpCheck(t.addr, s.timeoutMs), s);
    log.info({ check: t.addr, interval: s.intervalMs, threshold: t.threshold }, 'configuring TCP health check');
  });
  return checks.size > 0 ? checks : undefined;
}
