/** Bounded concurrency for storage round trips (tag lookups, garbage collection). */

/** `fn` over `items`, at most `limit` at once; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Tasks started as they are added, at most `limit` at once, so work can begin while the list
 * of work is still being gathered. After a task fails no new one starts; `drain()` waits for
 * those running and rethrows the first failure.
 */
export class TaskPool {
  private running = 0;
  private waiting: (() => Promise<void>)[] = [];
  private next = 0;
  private failure: { error: unknown } | null = null;
  private onIdle: (() => void) | null = null;

  constructor(private readonly limit: number) {}

  add(task: () => Promise<void>): void {
    if (this.failure) return;
    if (this.running < this.limit) this.start(task);
    else this.waiting.push(task);
  }

  private start(task: () => Promise<void>): void {
    this.running++;
    let run: Promise<void>;
    try {
      run = task();
    } catch (error) {
      run = Promise.reject(error);
    }
    run.then(
      () => this.finished(),
      (error: unknown) => {
        this.failure ??= { error };
        this.waiting = [];
        this.next = 0;
        this.finished();
      },
    );
  }

  private finished(): void {
    this.running--;
    if (this.next < this.waiting.length) {
      const task = this.waiting[this.next]!;
      this.waiting[this.next++] = undefined!; // let it be collected
      this.start(task);
    } else {
      this.waiting = [];
      this.next = 0;
      if (this.running === 0) this.onIdle?.();
    }
  }

  /** Wait until every task added has finished; the first failure, if any, is thrown. */
  async drain(): Promise<void> {
    if (this.running > 0) await new Promise<void>((resolve) => (this.onIdle = resolve));
    if (this.failure) throw this.failure.error;
  }
}
