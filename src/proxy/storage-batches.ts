/**
 * What goes to storage while a blob is downloaded: the upstream's chunks (which may be borrowed,
 * see raw-get.ts) copied into 1 MiB buffers of their own, since a FileWriter may keep what it is
 * given until it commits; straight to writers that copy anyway (`releasesChunks`). One batch is written while the next fills; a write that fails fails the
 * next `add` or `finish`.
 */
import type { FileWriter } from '../storage/driver.js';

const BATCH = 1024 * 1024;

export class StorageBatches {
  private buffer = Buffer.allocUnsafeSlow(BATCH);
  private fill = 0;
  private writing: Promise<void> | null = null;
  private failure: unknown = null;

  constructor(private readonly writer: FileWriter) {}

  /** Take a chunk; a promise when the previous batch is still being written (the chunk may be borrowed until it settles). */
  add(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    // A writer that copies (the filesystem's batches into pooled buffers) takes the chunk as it is.
    if (this.writer.releasesChunks) return this.writer.write(chunk);
    let offset = 0;
    while (offset < chunk.length) {
      if (this.fill === BATCH) {
        if (this.writing) {
          const rest = chunk.subarray(offset);
          return this.writing.then(() => this.add(rest));
        }
        this.flush();
      }
      const copied = chunk.copy(this.buffer, this.fill, offset);
      this.fill += copied;
      offset += copied;
    }
    return undefined;
  }

  /** Write what is left; resolves when the writer has taken everything. */
  async finish(): Promise<void> {
    if (this.writing) await this.writing;
    if (this.fill > 0) this.flush();
    if (this.writing) await this.writing;
    if (this.failure) throw this.failure;
  }

  private flush(): void {
    const data = this.fill === BATCH ? this.buffer : this.buffer.subarray(0, this.fill);
    this.buffer = Buffer.allocUnsafeSlow(BATCH);
    this.fill = 0;
    this.writing = this.writer.write(data).then(
      () => {
        this.writing = null;
      },
      (err: unknown) => {
        this.failure = err;
        this.writing = null;
        throw err;
      },
    );
    this.writing.catch(() => undefined); // also reported by the next add or finish
  }
}
