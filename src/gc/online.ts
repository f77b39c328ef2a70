/**
 * Online garbage collection (`storage.gc`, beyond Distribution): mark and sweep inside the running
 * server, every `interval`, while pushes and pulls go on.
 *
 * A blob is kept, besides everything a manifest references when its repository is marked, when
 * - its data was written within `graceperiod` (uploads finishing now, by any instance), or
 * - a request of this process touched it (HEAD, mount, link, manifest reference check) since the
 *   run began or within `graceperiod`: the BlobFence decides that and the deletion in one step,
 *   so a manifest pushed during the run never ends up pointing at a deleted blob.
 * Untagged manifests are never deleted online (that stays `wharf garbage-collect -m`).
 * In a fleet, enable it on one instance: other instances' touches are not seen here, only the
 * data's age protects their pushes (keep graceperiod above the longest push).
 */
import type { Logger } from 'pino';
import type { BlobFence } from '../registry/gc-fence.js';
import type { StorageDriver } from '../storage/driver.js';
import { markAndSweep, type GCDescriptorCache } from './mark-sweep.js';

export interface OnlineGCSettings {
  intervalMs: number;
  graceMs: number;
}

export interface OnlineRunResult {
  startedAt: Date;
  durationMs: number;
  marked: number;
  blobsDeleted: number;
  bytesReclaimed: number;
  /** Unreferenced blobs kept because they are young or were touched during the run. */
  blobsKept: number;
  problems: string[];
}

export interface OnlineGCHooks {
  descriptors?: GCDescriptorCache;
  /** Forget cached answers about a deleted blob; runs before a request waiting on it goes on. */
  forgetBlobs: (digests: readonly string[]) => Promise<void>;
  /** Called after each run (metrics, tests). */
  onRun?: (result: OnlineRunResult) => void;
}

export class OnlineCollector {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<OnlineRunResult> | null = null;
  private stopped = false;
  private lastResult: OnlineRunResult | null = null;

  constructor(
    private readonly driver: StorageDriver,
    private readonly fence: BlobFence,
    private readonly settings: OnlineGCSettings,
    private readonly log: Logger,
    private readonly hooks: OnlineGCHooks,
  ) {
    fence.enable();
  }

  get last(): OnlineRunResult | null {
    return this.lastResult;
  }

  /** Run every interval, the first run one interval after start. */
  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.runOnce()
        .catch((err: unknown) => this.log.error({ err }, 'online garbage collection failed; will try again next interval'))
        .finally(() => this.schedule());
    }, this.settings.intervalMs);
    this.timer.unref();
  }

  /** One collection; a run already in progress is joined rather than started twice. */
  runOnce(): Promise<OnlineRunResult> {
    this.current ??= this.collect().finally(() => (this.current = null));
    return this.current;
  }

  private async collect(): Promise<OnlineRunResult> {
    const startedAt = new Date();
    const runStart = startedAt.getTime();
    const grace = this.settings.graceMs;
    let kept = 0;
    const result = await markAndSweep(this.driver, {
      dryRun: false,
      removeUntagged: false,
      descriptors: this.hooks.descriptors,
      guard: {
        claim: (digest, modTime) => {
          const now = Date.now();
          const claim = modTime.getTime() >= now - grace ? null : this.fence.claim(digest, Math.min(runStart, now - grace));
          if (!claim) kept++;
          return claim;
        },
        afterDelete: (digest) => this.hooks.forgetBlobs([digest]),
      },
    });
    this.fence.prune(Math.min(runStart, Date.now() - grace));
    const run: OnlineRunResult = {
      startedAt,
      durationMs: Date.now() - runStart,
      marked: result.marked,
      blobsDeleted: result.blobsDeleted.length,
      bytesReclaimed: result.bytesReclaimed,
      blobsKept: kept,
      problems: result.problems,
    };
    this.lastResult = run;
    this.log.info(
      { gc: { ...run, startedAt: startedAt.toISOString(), problems: run.problems.length } },
      `online garbage collection: ${run.blobsDeleted} blobs (${run.bytesReclaimed} bytes) deleted, ${run.blobsKept} unreferenced blobs kept for now, ${run.marked} marked, ${run.durationMs} ms`,
    );
    for (const p of run.problems) this.log.warn(`online garbage collection: ${p}`);
    this.hooks.onRun?.(run);
    return run;
  }

  /** Stop scheduling and wait for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.current?.catch(() => undefined);
  }
}
