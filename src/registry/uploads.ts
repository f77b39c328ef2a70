/**
 * Blob uploads: `<name>/_uploads/<id>/{startedat,data}`. Bytes are hashed as they stream
 * to the driver. The running hash lives in this process; after a restart (or on another
 * instance) it is rebuilt by reading back the stored data, so any upload can be resumed.
 */
import { randomUUID, type Hash } from 'node:crypto';
import { isNotFound, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { BlobStore, type BlobDescriptor } from './blobs.js';
import { hashStream, newHash, CANONICAL_ALGORITHM } from './digest.js';
import { fail } from './errors.js';
import { streamed } from './memory.js';
import { algorithmOf } from './names.js';

const UPLOAD_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export interface UploadStatus {
  id: string;
  size: number;
  startedAt: Date;
}

/** Told of upload activity (metrics: `registry_uploads_*`); absent when metrics are off. */
export interface UploadObserver {
  started(): void;
  completed(): void;
  /** +1 when a request starts writing an upload's data, -1 when it is done. */
  writing(delta: 1 | -1): void;
}

interface HashState {
  hash: Hash;
  bytes: number;
}

export class UploadStore {
  /** Running hashes by "<name>/<id>", valid while `bytes` equals the stored size. */
  private readonly hashes = new Map<string, HashState>();
  /** One operation at a time per upload: a second PATCH waits for the first. */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    private readonly observer?: UploadObserver,
  ) {}

  async start(name: string): Promise<UploadStatus> {
    const id = randomUUID();
    const startedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    // RFC 3339 in whole seconds, as Distribution writes it, so either registry can read the other's uploads.
    const stamp = startedAt.toISOString().replace('.000Z', 'Z');
    await this.driver.putContent(pathFor({ kind: 'uploadStartedAt', name, id }), Buffer.from(stamp));
    this.observer?.started();
    return { id, size: 0, startedAt };
  }

  async status(name: string, id: string): Promise<UploadStatus> {
    if (!UPLOAD_ID.test(id)) fail('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
    let startedAt: Date;
    try {
      const text = (await this.driver.getContent(pathFor({ kind: 'uploadStartedAt', name, id }))).toString();
      startedAt = new Date(text.trim());
    } catch (err) {
      if (isNotFound(err)) fail('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
      throw err;
    }
    return { id, size: await this.dataSize(name, id), startedAt };
  }

  /** The upload's status; a chunk declared to start at `start` must start where the data ends (416 otherwise). */
  private async statusAt(name: string, id: string, start: number | undefined): Promise<UploadStatus> {
    const status = await this.status(name, id);
    if (start !== undefined && start !== status.size) {
      fail('RANGE_INVALID', `content range starts at ${start} but the upload has ${status.size} bytes`);
    }
    return status;
  }

  private async dataSize(name: string, id: string): Promise<number> {
    try {
      return (await this.driver.stat(pathFor({ kind: 'uploadData', name, id }))).size;
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
  }

  /**
   * Append a chunk. `start`, when given (from Content-Range), must equal the bytes
   * received so far. A body that breaks off keeps what arrived: the upload stays resumable.
   */
  async append(name: string, id: string, body: AsyncIterable<Buffer>, start?: number): Promise<UploadStatus> {
    return this.exclusive(name, id, async () => {
      const status = await this.statusAt(name, id, start);
      const size = await this.write(name, id, body);
      return { ...status, size };
    });
  }

  /** Complete the upload: append an optional last chunk, verify the digest, move the data into place. */
  async finish(name: string, id: string, digest: string, body: AsyncIterable<Buffer> | Iterable<Buffer> | null, start?: number): Promise<BlobDescriptor> {
    return this.exclusive(name, id, async () => {
      // A final chunk with a Content-Range must continue where the upload stands, as a PATCH must.
      await this.statusAt(name, id, start);
      // The driver's commit makes the bytes final (an object store completes its multipart upload).
      const size = await this.write(name, id, body ?? [], true);
      const key = `${name}/${id}`;
      let actual: string;
      const state = this.hashes.get(key);
      if (algorithmOf(digest) === CANONICAL_ALGORITHM && state && state.bytes === size) {
        actual = `${CANONICAL_ALGORITHM}:${state.hash.digest('hex')}`;
      } else {
        actual = await this.hashStored(name, id, algorithmOf(digest));
      }
      this.hashes.delete(key);
      if (actual !== digest) {
        await this.removeUpload(name, id);
        fail('DIGEST_INVALID', 'provided digest did not match uploaded content', { expected: digest, actual });
      }
      await this.commitBlob(name, id, digest, size);
      this.observer?.completed();
      return { digest, size };
    });
  }

  async cancel(name: string, id: string): Promise<void> {
    await this.exclusive(name, id, async () => {
      await this.status(name, id);
      this.hashes.delete(`${name}/${id}`);
      await this.removeUpload(name, id);
    });
  }

  /** Stream `body` onto the upload's data, hashing as it goes; returns the new size. */
  private async write(name: string, id: string, body: AsyncIterable<Buffer> | Iterable<Buffer>, commit = false): Promise<number> {
    this.observer?.writing(1);
    try {
      return await this.writeData(name, id, body, commit);
    } finally {
      this.observer?.writing(-1);
    }
  }

  private async writeData(name: string, id: string, body: AsyncIterable<Buffer> | Iterable<Buffer>, commit: boolean): Promise<number> {
    const key = `${name}/${id}`;
    const writer = await this.driver.writer(pathFor({ kind: 'uploadData', name, id }), true);
    let state = this.hashes.get(key);
    this.hashes.delete(key);
    let broken: unknown = null;
    try {
      if (!state || state.bytes !== writer.size) state = await this.rebuildHash(name, id, writer.size);
      for await (const chunk of body) {
        await writer.write(chunk);
        state.hash.update(chunk);
        state.bytes += chunk.length;
        streamed(chunk.length);
      }
    } catch (err) {
      broken = err;
    }
    // A failed close means the hash may describe bytes the disk lacks: it is not kept.
    if (commit && !broken) await writer.commit();
    else await writer.close();
    if (state && state.bytes === writer.size) this.hashes.set(key, state);
    if (broken) throw broken;
    return writer.size;
  }

  private async rebuildHash(name: string, id: string, size: number): Promise<HashState> {
    const hash = newHash();
    if (size === 0) return { hash, bytes: 0 };
    const { bytes } = await hashStream(await this.driver.reader(pathFor({ kind: 'uploadData', name, id }), 0, size), hash);
    return { hash, bytes };
  }

  private async hashStored(name: string, id: string, algorithm: string): Promise<string> {
    let hash: Hash;
    try {
      hash = newHash(algorithm);
    } catch {
      fail('DIGEST_INVALID', `unsupported digest algorithm ${algorithm}`);
    }
    try {
      await hashStream(await this.driver.reader(pathFor({ kind: 'uploadData', name, id })), hash);
    } catch (err) {
      if (!isNotFound(err)) throw err; // no data file: an empty blob
    }
    return `${algorithm}:${hash.digest('hex')}`;
  }

  private async commitBlob(name: string, id: string, digest: string, size: number): Promise<void> {
    const existing = await this.blobs.statGlobal(digest);
    if (!existing) {
      const data = pathFor({ kind: 'uploadData', name, id });
      if (size === 0) await this.driver.putContent(data, Buffer.alloc(0)).catch(() => undefined);
      await this.driver.move(data, pathFor({ kind: 'blobData', digest }));
    }
    await this.blobs.link(name, digest, existing?.size ?? size);
    await this.removeUpload(name, id);
  }

  private async removeUpload(name: string, id: string): Promise<void> {
    try {
      await this.driver.delete(pathFor({ kind: 'uploadDir', name, id }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async exclusive<T>(name: string, id: string, work: () => Promise<T>): Promise<T> {
    const key = `${name}/${id}`;
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(work);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}
