/**
 * The meeting point of requests and the online garbage collector, inside one process.
 *
 * Requests `touch` every blob digest they look up, link or write. The collector deletes a blob
 * only after `claim`ing it, which fails for a digest touched since the run began or within the
 * grace period. The check and the claim happen in one synchronous step, and a request that finds
 * its digest claimed waits for the deletion to finish before it looks (and then sees the blob
 * gone, so a manifest push answers MANIFEST_BLOB_UNKNOWN rather than storing a dangling
 * reference). JavaScript runs one step at a time, so either the request touches first and the
 * collector skips the blob, or the collector claims first and the request sees the deletion.
 */
export class BlobFence {
  /** digest → when it was last touched (ms); insertion order is touch order (re-set on touch). */
  private readonly touched = new Map<string, number>();
  private readonly deleting = new Map<string, Promise<void>>();
  private tracking = false;

  /** Start recording touches (online GC is configured). Without it, `touch` costs nothing. */
  enable(): void {
    this.tracking = true;
  }

  get enabled(): boolean {
    return this.tracking;
  }

  touch(digest: string): void {
    if (!this.tracking) return;
    this.touched.delete(digest);
    this.touched.set(digest, Date.now());
  }

  /** Touch, then wait while the collector is deleting `digest`. */
  async pass(digest: string): Promise<void> {
    if (!this.tracking) return;
    this.touch(digest);
    const pending = this.deleting.get(digest);
    if (pending) await pending;
  }

  /**
   * The collector's claim: false when `digest` was touched at or after `keepSince` (ms). On
   * success the digest counts as being deleted until `release`.
   */
  claim(digest: string, keepSince: number): { release(): void } | null {
    const at = this.touched.get(digest);
    if (at !== undefined && at >= keepSince) return null;
    let done!: () => void;
    this.deleting.set(digest, new Promise<void>((resolve) => (done = resolve)));
    return {
      release: () => {
        this.deleting.delete(digest);
        done();
      },
    };
  }

  /** Forget touches older than `before` (ms), oldest first, so the map stays small. */
  prune(before: number): void {
    for (const [digest, at] of this.touched) {
      if (at >= before) break;
      this.touched.delete(digest);
    }
  }

  get size(): number {
    return this.touched.size;
  }
}
