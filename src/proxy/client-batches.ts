/**
 * What the clients of one download are sent, copied out of the upstream's chunks into two pooled
 * 512 KiB buffers: one filling while the other is being written. The chunks are then garbage at
 * once (V8 frees them in its cheap young-generation sweeps instead of keeping them until a full
 * collection), and each client gets a few large writes instead of one per upstream read.
 *
 * A full buffer goes out only once a later byte has arrived, so the end of the blob is always held
 * back until `finish`, which the caller calls only after verifying the digest.
 */
import type { ServerResponse } from 'node:http';

const SIZE = 512 * 1024;
const POOL_MAX = 16;
const pool: Buffer[] = [];

const take = (): Buffer => pool.pop() ?? Buffer.allocUnsafeSlow(SIZE);
const give = (b: Buffer): void => {
  if (pool.length < POOL_MAX) pool.push(b);
};

export class ClientBatches {
  private readonly buffers: [Buffer, Buffer] = [take(), take()];
  private current = 0;
  private fill = 0;
  /** Writes of the other buffer to every client: it may be filled again once they are done. */
  private inFlight: Promise<void> = Promise.resolve();
  private sending = false;
  private started = false;

  /** `onStart` runs just before the first bytes go out: from then on nobody can join from the start. */
  constructor(
    private readonly clients: () => Iterable<ServerResponse>,
    private readonly onStart: () => void,
  ) {}

  /**
   * Take a chunk; returns a promise when there is no room for the rest of it yet (the slowest
   * client sets the pace), which settles once all of it is taken: the chunk may be borrowed until then.
   */
  add(chunk: Buffer): Promise<void> | undefined {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.fill === SIZE) {
        // More bytes follow the full buffer, so it is not the blob's end: it may go, once the other is free.
        if (this.sending) {
          const rest = chunk.subarray(offset);
          return this.inFlight.then(() => this.add(rest));
        }
        this.sending = true;
        this.inFlight = this.send(this.buffers[this.current], SIZE).then(() => {
          this.sending = false;
        });
        this.current ^= 1;
        this.fill = 0;
      }
      const copied = chunk.copy(this.buffers[this.current], this.fill, offset);
      this.fill += copied;
      offset += copied;
    }
    return undefined;
  }

  /**
   * The digest is verified: send what was held back and end every response, without waiting for
   * slow clients to take it all. `done` runs as each response ends (or its client goes).
   */
  async finish(done: (res: ServerResponse) => void): Promise<void> {
    await this.inFlight;
    const tail = this.buffers[this.current].subarray(0, this.fill);
    const ending = [...this.clients()].map(
      (res) =>
        new Promise<void>((resolve) => {
          const ended = () => {
            done(res);
            resolve();
          };
          res.once('close', ended);
          res.end(tail, ended);
        }),
    );
    void Promise.all(ending).then(() => this.release());
  }

  /** The download failed: give the buffers back once nothing is writing from them. */
  async abandon(): Promise<void> {
    await this.inFlight;
    this.release();
  }

  private release(): void {
    give(this.buffers[0]);
    give(this.buffers[1]);
  }

  /** Write `length` bytes of `buffer` to every client; resolves when each has taken them or gone. */
  private send(buffer: Buffer, length: number): Promise<void> {
    if (!this.started) {
      this.started = true;
      this.onStart();
    }
    const data = buffer.subarray(0, length);
    const writes: Promise<void>[] = [];
    for (const res of this.clients()) {
      if (res.destroyed) continue;
      writes.push(
        new Promise<void>((resolve) => {
          res.once('close', resolve);
          res.write(data, () => {
            res.off('close', resolve);
            resolve();
          });
        }),
      );
    }
    return Promise.all(writes).then(() => undefined);
  }
}
