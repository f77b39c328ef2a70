/**
 * A storage driver that hands every call to the driver it wraps: the base of storage middleware,
 * which change only how blob URLs are made (as Distribution's middleware embed the driver).
 */
import type { Readable, Writable } from 'node:stream';
import type { FileInfo, FileWriter, RedirectClient, StorageDriver } from '../driver.js';

export class WrappedDriver implements StorageDriver {
  readonly name: string;
  readonly sendTo?: StorageDriver['sendTo'];

  constructor(readonly inner: StorageDriver) {
    this.name = inner.name;
    // Only present when the wrapped driver has the fast path (callers test for it).
    if (inner.sendTo) this.sendTo = (path: string, offset: number, length: number | undefined, destination: Writable) => inner.sendTo!(path, offset, length, destination);
  }

  getContent(path: string): Promise<Buffer> {
    return this.inner.getContent(path);
  }
  putContent(path: string, content: Buffer): Promise<void> {
    return this.inner.putContent(path, content);
  }
  reader(path: string, offset?: number, length?: number): Promise<Readable> {
    return this.inner.reader(path, offset, length);
  }
  writer(path: string, append: boolean): Promise<FileWriter> {
    return this.inner.writer(path, append);
  }
  stat(path: string): Promise<FileInfo> {
    return this.inner.stat(path);
  }
  list(path: string): Promise<string[]> {
    return this.inner.list(path);
  }
  move(source: string, dest: string): Promise<void> {
    return this.inner.move(source, dest);
  }
  delete(path: string): Promise<void> {
    return this.inner.delete(path);
  }
  redirectURL(method: string, path: string, client?: RedirectClient): Promise<string | null> {
    return this.inner.redirectURL(method, path, client);
  }
  walk(path: string, visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip'): Promise<void> {
    return this.inner.walk(path, visit);
  }
}
