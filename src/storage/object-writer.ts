/**
 * Pieces the object-store drivers' writers share (s3, oss, gcs and azure buffer chunks into parts
 * with one request in flight; swift streams its segments but keeps the same session states).
 */
import type { FileWriter } from './driver.js';
import { takeFront } from './object-store.js';

/** Bytes written and not sent yet, taken from the front as parts. */
export class ChunkBuffer {
  private chunks: Buffer[] = [];
  private bytes = 0;

  get size(): number {
    return this.bytes;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /** Put bytes in front of what is buffered (a committed object's bytes, read back to be appended to). */
  unshift(chunk: Buffer): void {
    this.chunks.unshift(chunk);
    this.bytes += chunk.length;
  }

  /** The first `n` buffered bytes (at most `size`), removed from the buffer. */
  take(n: number): Buffer {
    this.bytes -= n;
    return takeFront(this.chunks, n);
  }

  takeAll(): Buffer {
    return this.take(this.bytes);
  }

  /** Everything buffered, in one Buffer, left in the buffer. */
  copy(): Buffer {
    return Buffer.concat(this.chunks, this.bytes);
  }

  clear(): void {
    this.chunks = [];
    this.bytes = 0;
  }

  /** Send every whole part the buffer holds, in order, one after the other; `partSize()` is asked again before each. */
  async sendParts(partSize: () => number, send: (part: Buffer) => Promise<void>): Promise<void> {
    while (this.bytes >= partSize()) await send(this.take(partSize()));
  }
}

export type WriterState = 'open' | 'closed' | 'committed' | 'cancelled';

/**
 * A writer session's state and its one request in flight. Writing, committing and checkpointing
 * need an open session with no failure (the FileWriter contract); closing twice is fine; a cancel
 * ends the session whatever its state. The first failure of a request in flight fails the
 * session: it is thrown by the next call that waits for it. `release` runs when the session
 * ends (a writer leaves its driver's open writers).
 */
export class WriterSession {
  private state: WriterState = 'open';
  private failure: unknown = null;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly driver: string,
    private readonly path: string,
    private readonly release: () => void = () => undefined,
  ) {}

  /** The first failure, or null. */
  get failed(): unknown {
    return this.failure;
  }

  /** Fail the session (a write that broke half-way). */
  fail(err: unknown): void {
    this.failure = err;
  }

  /** Throw the failure (through `wrap`), or an error when the session has ended. */
  check(wrap: (failure: unknown) => unknown = (failure) => failure): void {
    if (this.failure) throw wrap(this.failure);
    if (this.state !== 'open') throw new Error(`${this.driver}: writer for ${this.path} is ${this.state}`);
  }

  /** End an open session as closed; false when it had ended already (nothing to do). */
  close(): boolean {
    if (this.state !== 'open') return false;
    this.state = 'closed';
    this.release();
    return true;
  }

  /** End the session as committed (after `check()`) or cancelled; whether it was open. */
  end(state: 'committed' | 'cancelled'): boolean {
    const wasOpen = this.state === 'open';
    this.state = state;
    this.release();
    return wasOpen;
  }

  /** Wait for the request in flight and throw the session's failure, if any. */
  async settle(): Promise<void> {
    await this.inFlight;
    if (this.failure) throw this.failure;
  }

  /** Wait for the request in flight, whatever its outcome. */
  async idle(): Promise<void> {
    await this.inFlight;
  }

  /** Let `request` run while the next part fills (after `settle()`): its failure fails the session. */
  launch(request: Promise<void>): void {
    this.inFlight = request.catch((err) => {
      this.failure = err;
    });
  }
}

/** Writers with an open session, by object name: a reader of bytes still being written asks them to checkpoint. */
export class OpenWriters<W> extends Map<string, W> {
  /** Forget `writer` as the one open at `key`, unless another writer has taken its place. */
  release(key: string, writer: W): void {
    if (this.get(key) === writer) this.delete(key);
  }
}

/**
 * Turn a file still being written into its object, for a reader that needs its bytes: the writer
 * of this process holding it checkpoints (and goes on writing); otherwise `resumeUnfinished` takes
 * the upload over (null: there is none) and commits it. Whether there was anything to complete.
 */
export async function completeUnfinished(
  openWriters: OpenWriters<{ checkpoint(): Promise<void> }>,
  key: string,
  resumeUnfinished: () => Promise<FileWriter | null>,
): Promise<boolean> {
  const open = openWriters.get(key);
  if (open) {
    await open.checkpoint();
    return true;
  }
  const w = await resumeUnfinished();
  if (!w) return false;
  await w.commit();
  return true;
}
