/**
 * One upstream download of one blob, shared: the clients that ask for it before its first byte
 * went out read the same stream while it is written to storage; later ones wait for it to land and
 * are then served from storage. Nothing is visible before the bytes are verified:
 * - the data goes to an upload (`<name>/_uploads/<id>/`, as Distribution's cache does) and is moved
 *   into place only when its size and digest are right;
 * - clients get the blob's last bytes only then (see ClientBatches), so a wrong or cut-short blob
 *   ends in a cut connection, never in a body that looks whole;
 * - a client that leaves does not stop the download: it completes the cache, unless nobody has been
 *   waiting for it for `cacheWriteTimeout`, and is otherwise discarded.
 * Backpressure runs end to end: the upstream is read no faster than storage and the slowest client take it.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { BlobDescriptor } from '../registry/blobs.js';
import { newHash } from '../registry/digest.js';
import { RegistryError } from '../registry/errors.js';
import { streamed } from '../registry/memory.js';
import { algorithmOf } from '../registry/names.js';
import type { Registry } from '../registry/registry.js';
import { isNotFound, type FileWriter } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';
import { ClientBatches } from './client-batches.js';
import { StorageBatches } from './storage-batches.js';
import { UpstreamUnreachable, type UpstreamResponse } from './http.js';
import { ENTRY_BLOB, type ExpiryScheduler } from './scheduler.js';
import type { Upstream, Wanted } from './upstream.js';

/** An upstream blob body: its announced length and its chunks (borrowed until `onChunk` returns or its promise settles). */
interface BlobBody {
  length: number | undefined;
  pump(onChunk: (chunk: Buffer) => void | Promise<void>): Promise<void>;
  destroy(): void;
}

interface Subscriber {
  res: ServerResponse;
  resolve(desc: BlobDescriptor | null): void;
  reject(err: unknown): void;
}

/** A storage failure while filling the cache: the client is told as for any storage failure, not blamed on the upstream. */
class StorageFault extends Error {
  constructor(readonly original: unknown) {
    super('storage failed');
  }
}

const inStorage = <T>(p: Promise<T>): Promise<T> =>
  p.catch((err: unknown) => {
    throw new StorageFault(err);
  });

export interface FetchDeps {
  registry: Registry;
  scheduler?: ExpiryScheduler;
  log: Logger;
}

export class BlobFetch {
  /** Resolves once the blob is in storage and linked; rejects with what clients should be told. */
  readonly done: Promise<BlobDescriptor>;
  private readonly subscribers = new Set<Subscriber>();
  private headers: Record<string, string | number> | null = null;
  /** A body byte has gone to the clients: nobody can join the stream any more. */
  private flowing = false;
  private over = false;
  private waiting = 0;
  private abandon: NodeJS.Timeout | undefined;
  private abandoned: RegistryError | null = null;

  constructor(
    private readonly deps: FetchDeps,
    private readonly upstream: Upstream,
    readonly name: string,
    private readonly remoteName: string,
    readonly digest: string,
  ) {
    this.done = this.run().finally(() => {
      this.over = true;
      clearTimeout(this.abandon);
    });
    this.done.catch(() => undefined); // each waiter handles it
  }

  /**
   * Stream the blob to `res` as it arrives: resolves with its descriptor once `res` got all of it
   * (null if the client left first); rejects when the download fails. Returns null when the
   * stream has already begun: the caller waits for `done` instead.
   */
  join(res: ServerResponse): Promise<BlobDescriptor | null> | null {
    if (this.flowing || this.over) return null;
    return new Promise((resolve, reject) => {
      const sub: Subscriber = { res, resolve, reject };
      this.subscribers.add(sub);
      this.interested(1);
      if (this.headers) startResponse(res, this.headers);
      res.once('close', () => {
        if (!this.subscribers.delete(sub)) return;
        this.interested(-1);
        resolve(null); // the client left; the download goes on for the cache
      });
    });
  }

  /** Wait for the blob to land in storage (a client that came too late for the stream). */
  async wait(): Promise<BlobDescriptor> {
    this.interested(1);
    try {
      return await this.done;
    } finally {
      this.interested(-1);
    }
  }

  /** Count who waits; with nobody left, the download has `cacheWriteTimeout` to finish. */
  private interested(delta: 1 | -1): void {
    this.waiting += delta;
    clearTimeout(this.abandon);
    if (this.waiting > 0 || this.over) return;
    const ms = this.upstream.settings.cacheWriteTimeout;
    this.abandon = setTimeout(() => {
      this.abandoned = new RegistryError('UNKNOWN', `gave up filling the cache after ${ms} ms with no client waiting (${this.upstream.settings.key}.cachewritetimeout)`);
    }, ms);
    this.abandon.unref();
  }

  private async run(): Promise<BlobDescriptor> {
    const wanted = { code: 'BLOB_UNKNOWN' as const, name: this.name, remoteName: this.remoteName, reference: this.digest };
    try {
      const body = await this.open(wanted);
      const declared = body.length;
      this.headers = {
        'Content-Type': 'application/octet-stream',
        'Docker-Content-Digest': this.digest,
        ETag: `"${this.digest}"`,
        'Cache-Control': 'max-age=31536000',
        ...(declared !== undefined && { 'Content-Length': declared }),
      };
      for (const s of this.subscribers) startResponse(s.res, this.headers);
      const desc = await this.transfer(body, declared);
      return desc;
    } catch (err) {
      const e = err instanceof StorageFault ? err.original : err instanceof RegistryError ? err : this.upstream.failure(err);
      for (const s of this.subscribers) s.reject(e);
      this.subscribers.clear();
      throw e;
    }
  }

  /** The upstream's answer: on a raw connection when it is a plain one, else through the HTTP client (which explains refusals). */
  private async open(wanted: Wanted): Promise<BlobBody> {
    const raw = await this.upstream.rawBlob(this.remoteName, this.digest);
    if (raw) {
      const broke = (err: unknown): never => {
        // What onChunk threw passes as it is; the rest is the connection's, told as the HTTP client's are.
        if (err instanceof StorageFault || err instanceof RegistryError) throw err;
        throw new UpstreamUnreachable(`${this.upstream.origin}: ${(err as Error).message}`);
      };
      return { length: raw.length ?? undefined, pump: (f) => raw.pump(f).catch(broke), destroy: () => raw.destroy() };
    }
    let res: UpstreamResponse;
    try {
      res = await this.upstream.request('GET', this.remoteName, `blobs/${this.digest}`);
    } catch (err) {
      throw this.upstream.failure(err);
    }
    if (res.status !== 200) throw this.upstream.refusal(res, wanted);
    const length = /^\d+$/.test(res.headers['content-length'] ?? '') ? Number(res.headers['content-length']) : undefined;
    return {
      length,
      async pump(onChunk) {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          streamed(chunk.length); // the HTTP client's chunks are garbage once used (a raw body's are reused)
          await onChunk(chunk);
        }
      },
      destroy: () => res.body.destroy(),
    };
  }

  /** Copy the body to storage and the clients, verify it, answer the clients, then commit. */
  private async transfer(body: BlobBody, declared: number | undefined): Promise<BlobDescriptor> {
    const { registry, log } = this.deps;
    const driver = registry.driver;
    const id = randomUUID();
    const upload = { name: this.name, id };
    // As Distribution's uploads: RFC 3339 start time, so upload purging clears what a crash leaves.
    const stamp = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    await inStorage(driver.putContent(pathFor({ kind: 'uploadStartedAt', ...upload }), Buffer.from(stamp)));
    let writer: FileWriter | undefined;
    const hash = newHash(algorithmOf(this.digest));
    let bytes = 0;
    // What the clients get; the end of the blob stays in it until the digest is verified.
    const toClients = new ClientBatches(
      () => [...this.subscribers].map((s) => s.res),
      () => (this.flowing = true),
    );
    try {
      writer = await inStorage(driver.writer(pathFor({ kind: 'uploadData', ...upload }), false));
      const toStorage = new StorageBatches(writer);
      const tooMany = (): RegistryError =>
        new RegistryError('UNKNOWN', `the upstream registry ${this.upstream.origin} sent more bytes than the ${declared} it announced for ${this.digest}: discarded`, undefined, 502);
      // Promises only when something must wait: a raw body pauses its socket for each one.
      await body.pump((chunk) => {
        if (this.abandoned) throw this.abandoned;
        hash.update(chunk);
        bytes += chunk.length;
        if (declared !== undefined && bytes > declared) throw tooMany();
        let stored: Promise<void> | undefined;
        try {
          stored = toStorage.add(chunk)?.catch((err: unknown) => {
            throw new StorageFault(err);
          });
        } catch (err) {
          throw new StorageFault(err);
        }
        const sent = toClients.add(chunk);
        return stored && sent ? Promise.all([stored, sent]).then(() => undefined) : (stored ?? sent);
      });
      await inStorage(toStorage.finish());
      this.flowing = true; // the last chunk is held: from here on nobody can join the stream
      if (declared !== undefined && bytes !== declared) {
        throw new RegistryError('UNKNOWN', `the upstream registry ${this.upstream.origin} sent ${bytes > declared ? 'more' : 'fewer'} bytes than the ${declared} it announced for ${this.digest}: discarded`, undefined, 502);
      }
      const actual = `${algorithmOf(this.digest)}:${hash.digest('hex')}`;
      if (actual !== this.digest) {
        throw new RegistryError('UNKNOWN', `the upstream registry ${this.upstream.origin} sent content whose digest is ${actual}, not ${this.digest}: discarded`, undefined, 502);
      }
    } catch (err) {
      body.destroy();
      void toClients.abandon();
      await writer?.cancel().catch(() => undefined);
      await this.removeUpload(upload);
      if (err instanceof StorageFault) log.error({ name: this.name, digest: this.digest, err: err.original }, 'proxy: writing a downloaded blob to storage failed');
      else if (!(err instanceof RegistryError)) log.warn({ name: this.name, digest: this.digest, err: (err as Error).message }, 'proxy: blob download failed');
      else log.warn({ name: this.name, digest: this.digest, err: err.message }, 'proxy: blob download refused');
      throw err;
    }
    const desc = { digest: this.digest, size: bytes };
    // Verified: the clients get the rest before the commit, which they need not wait for.
    const byResponse = new Map([...this.subscribers].map((s) => [s.res, s]));
    await toClients.finish((res) => {
      const s = byResponse.get(res);
      if (s && this.subscribers.delete(s)) s.resolve(desc);
    });
    try {
      await writer.commit();
      const data = pathFor({ kind: 'uploadData', ...upload });
      if (bytes === 0) await driver.putContent(data, Buffer.alloc(0));
      await driver.move(data, pathFor({ kind: 'blobData', digest: this.digest }));
      await registry.blobs.link(this.name, this.digest, bytes);
      this.deps.scheduler?.add(this.name, this.digest, ENTRY_BLOB, this.upstream.settings.ttl);
    } catch (err) {
      log.error({ name: this.name, digest: this.digest, err }, 'proxy: storing a downloaded blob failed');
      throw err;
    } finally {
      await this.removeUpload(upload);
    }
    return desc;
  }

  private async removeUpload(upload: { name: string; id: string }): Promise<void> {
    await this.deps.registry.driver.delete(pathFor({ kind: 'uploadDir', ...upload })).catch((err) => {
      if (!isNotFound(err)) this.deps.log.warn({ err, ...upload }, 'proxy: removing a download left an upload behind (upload purging clears it)');
    });
  }
}

/** Status and headers go out at once (not with the first body byte): a client knows the size while the upstream is slow. */
function startResponse(res: ServerResponse, headers: Record<string, string | number>): void {
  res.writeHead(200, headers);
  (res as { flushHeaders?: () => void }).flushHeaders?.();
}
