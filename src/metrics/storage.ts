/**
 * A storage driver that times every call of the driver it wraps into
 * `registry_storage_action_seconds{driver,action}`, with Distribution's action names (GetContent,
 * PutContent, Stat, List, Move, Delete, URLFor) plus Reader/Writer (opening a stream), Commit
 * (making an upload's bytes final) and Walk. Streaming itself (reads, writes, SendTo) is not timed:
 * its pace is the client's. Only used when metrics are on; drivers stay unaware of it.
 */
import type { Readable, Writable } from 'node:stream';
import type { Histogram } from 'prom-client';
import type { FileInfo, FileWriter, StorageDriver } from '../storage/driver.js';

export function instrumentDriver(driver: StorageDriver, histogram: Histogram<'driver' | 'action'>): StorageDriver {
  return new InstrumentedDriver(driver, histogram);
}

class InstrumentedDriver implements StorageDriver {
  readonly name: string;
  /** Present only when the wrapped driver has it: callers test for it to pick the fast path. */
  readonly sendTo?: (path: string, offset: number, length: number | undefined, destination: Writable) => Promise<void>;

  constructor(
    private readonly inner: StorageDriver,
    private readonly histogram: Histogram<'driver' | 'action'>,
  ) {
    this.name = inner.name;
    if (inner.sendTo) this.sendTo = inner.sendTo.bind(inner);
  }

  private async timed<T>(action: string, work: () => Promise<T>): Promise<T> {
    const end = this.histogram.startTimer({ driver: this.name, action });
    try {
      return await work();
    } finally {
      end();
    }
  }

  getContent(path: string): Promise<Buffer> {
    return this.timed('GetContent', () => this.inner.getContent(path));
  }

  putContent(path: string, content: Buffer): Promise<void> {
    return this.timed('PutContent', () => this.inner.putContent(path, content));
  }

  reader(path: string, offset?: number, length?: number): Promise<Readable> {
    return this.timed('Reader', () => this.inner.reader(path, offset, length));
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    const w = await this.timed('Writer', () => this.inner.writer(path, append));
    const timed = this.timed.bind(this);
    return {
      get size() {
        return w.size;
      },
      // Kept: without it a caller copies every chunk it would otherwise hand over as is.
      releasesChunks: w.releasesChunks,
      write: (chunk) => w.write(chunk),
      close: () => w.close(),
      commit: () => timed('Commit', () => w.commit()),
      cancel: () => w.cancel(),
    };
  }

  stat(path: string): Promise<FileInfo> {
    return this.timed('Stat', () => this.inner.stat(path));
  }

  list(path: string): Promise<string[]> {
    return this.timed('List', () => this.inner.list(path));
  }

  move(source: string, dest: string): Promise<void> {
    return this.timed('Move', () => this.inner.move(source, dest));
  }

  delete(path: string): Promise<void> {
    return this.timed('Delete', () => this.inner.delete(path));
  }

  redirectURL(...args: Parameters<StorageDriver['redirectURL']>): Promise<string | null> {
    return this.timed('URLFor', () => this.inner.redirectURL(...args));
  }

  walk(path: string, visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip'): Promise<void> {
    return this.timed('Walk', () => this.inner.walk(path, visit));
  }
}
