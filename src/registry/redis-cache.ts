/**
 * `storage.cache.blobdescriptor: redis`: blob descriptors shared by every registry instance,
 * stored exactly as Distribution (2.8 and 3) stores them, so Wharf and docker-registry can share
 * one Redis and one storage:
 *
 *   blobs::<digest>                         hash  digest, size, mediatype   (the global blob)
 *   repository::<name>::blobs               set   digests the repository links
 *   repository::<name>::blobs::<digest>     hash  mediatype                 (per-repository override)
 *
 * A repository answer needs all three, as Distribution's does. Unlike Distribution (#1803),
 * every delete clears what it made stale: a link delete, a repository delete, and garbage
 * collection. Redis being away never fails a request: reads miss, writes are skipped, and
 * clears are queued and replayed before the cache is used again.
 */
import type { Logger } from 'pino';
import type { RedisConnection } from '../config/redis.js';
import { describeRedis } from '../config/redis.js';
import type { CachedDescriptor, DescriptorCache, StorageAfterSweep } from './cache.js';
import { connectRedis, isReplyError, keyHolders, type RedisClient } from './redis-client.js';

/** What Distribution's global blob statter answers for every blob. */
const OCTET_STREAM = 'application/octet-stream';

export const blobKey = (digest: string) => `blobs::${digest}`;
export const repositorySetKey = (name: string) => `repository::${name}::blobs`;
export const repositoryBlobKey = (name: string, digest: string) => `repository::${name}::blobs::${digest}`;

/** Clears waiting for Redis to come back; past this many the cache stays off (and says so). */
const MAX_PENDING = 100_000;
/** How often a suspended cache (commands timed out) PINGs. */
const PROBE_MS = 1000;
/** When a clear is repeated (see clearTwice). */
const RECLEAR_MS = 2000;

type Clear = (client: RedisClient) => Promise<unknown>;

export class RedisDescriptorCache implements DescriptorCache {
  private usable = true;
  private pending: Clear[] = [];
  private overflowed = false;
  private probe: NodeJS.Timeout | null = null;
  private resuming = false;
  private closed = false;

  private constructor(
    readonly client: RedisClient,
    private readonly where: string,
    private readonly log: Logger,
  ) {
    client.on('error', (err: Error) => this.down(err));
    client.on('close', () => this.down(new Error('connection closed')));
    client.on('ready', () => void this.resume());
  }

  /** Connect (failing with a clear message when Redis cannot be used) and return the cache. */
  static async open(c: RedisConnection, log: Logger): Promise<RedisDescriptorCache> {
    const client = await connectRedis(c, log);
    log.info({ redis: describeRedis(c) }, 'blob descriptor cache: redis');
    return new RedisDescriptorCache(client, describeRedis(c), log);
  }

  async blob(digest: string): Promise<CachedDescriptor | undefined> {
    const reply = await this.read(() => this.client.hmget(blobKey(digest), 'digest', 'size', 'mediatype'));
    return reply ? descriptorOf(reply) : undefined;
  }

  async setBlob(desc: CachedDescriptor): Promise<void> {
    await this.write(() => setGlobal(this.client, desc));
  }

  async linked(name: string, digest: string): Promise<CachedDescriptor | undefined> {
    const reply = await this.read(() =>
      Promise.all([
        this.client.sismember(repositorySetKey(name), digest),
        this.client.hmget(blobKey(digest), 'digest', 'size', 'mediatype'),
        this.client.hget(repositoryBlobKey(name, digest), 'mediatype'),
      ]),
    );
    if (!reply) return undefined;
    const [member, global, mediatype] = reply;
    // Distribution answers from the cache only with all three (a missing mediatype is a miss).
    if (member !== 1 || mediatype === null) return undefined;
    return descriptorOf(global);
  }

  async setLinked(name: string, desc: CachedDescriptor): Promise<void> {
    await this.write(() =>
      Promise.all([
        this.client.sadd(repositorySetKey(name), desc.digest),
        setGlobal(this.client, desc),
        this.client.hset(repositoryBlobKey(name, desc.digest), 'mediatype', OCTET_STREAM),
      ]),
    );
  }

  async forgetLinked(name: string, digest: string): Promise<void> {
    await this.clearTwice((c) => Promise.all([c.srem(repositorySetKey(name), digest), c.del(repositoryBlobKey(name, digest))]));
  }

  /** Online GC deleted these blobs: without `blobs::<digest>` neither `blob` nor `linked` answers for them. */
  async forgetBlobs(digests: readonly string[]): Promise<void> {
    if (digests.length === 0) return;
    // One DEL per key: a Redis Cluster refuses a DEL whose keys lie in different slots (CROSSSLOT).
    await this.clearTwice((c) => Promise.all(digests.map((d) => c.del(blobKey(d)))));
  }

  dropStale(name: string, digest: string): void {
    void this.write(() => Promise.all([this.client.srem(repositorySetKey(name), digest), this.client.del(repositoryBlobKey(name, digest))]));
  }

  async forgetRepository(name: string): Promise<void> {
    await this.clearTwice(async (c) => {
      const members = await c.smembers(repositorySetKey(name));
      await Promise.all([c.del(repositorySetKey(name)), ...members.map((d) => c.del(repositoryBlobKey(name, d)))]);
    });
  }

  /** Clears that Redis has not taken yet (it was away); an offline tool must not exit with any. */
  get pendingClears(): number {
    return this.pending.length + (this.overflowed ? 1 : 0);
  }

  /** Wait up to `timeoutMs` for queued clears to reach Redis; whether none is left. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.pendingClears > 0 && Date.now() < deadline) {
      await this.resume();
      if (this.pendingClears > 0) await new Promise((r) => setTimeout(r, 200));
    }
    return this.pendingClears === 0;
  }

  /**
   * After garbage collection: forget every blob storage no longer has, and every repository entry
   * without its layer link, including repositories storage no longer has and what another registry
   * (docker-registry's garbage-collect, Distribution #1803) left stale. Fails loudly: a GC that
   * cannot clear Redis leaves the fleet answering HEAD 200 for deleted blobs.
   */
  async reconcile(storage: StorageAfterSweep): Promise<{ blobs: number; repositoryEntries: number }> {
    let blobs = 0;
    let repositoryEntries = 0;
    for (const node of keyHolders(this.client)) {
      for await (const keys of node.scanStream({ match: 'blobs::*', count: 1000 }) as AsyncIterable<string[]>) {
        const stale = keys.filter((k) => !storage.blobExists(k.slice('blobs::'.length)));
        await Promise.all(stale.map((k) => this.client.del(k)));
        blobs += stale.length;
      }
    }
    for (const node of keyHolders(this.client)) {
      for await (const keys of node.scanStream({ match: 'repository::*::blobs', count: 1000 }) as AsyncIterable<string[]>) {
        for (const key of keys) {
          const name = key.slice('repository::'.length, -'::blobs'.length);
          const members = await this.client.smembers(key);
          const stale: string[] = [];
          for (let i = 0; i < members.length; i += 32) {
            const chunk = members.slice(i, i + 32);
            const kept = await Promise.all(chunk.map(async (d) => storage.blobExists(d) && (await storage.isLinked(name, d))));
            stale.push(...chunk.filter((_, j) => !kept[j]));
          }
          if (stale.length === 0) continue;
          repositoryEntries += stale.length;
          await Promise.all([this.client.srem(key, ...stale), ...stale.map((d) => this.client.del(repositoryBlobKey(name, d)))]);
        }
      }
    }
    return { blobs, repositoryEntries };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probe) clearInterval(this.probe);
    await this.client.quit().catch(() => this.client.disconnect());
  }

  /** Whether reads and writes go to Redis now (false while it is away or clears are pending). */
  get available(): boolean {
    return this.usable;
  }

  private async read<T>(op: () => Promise<T>): Promise<T | undefined> {
    if (!this.usable) return undefined;
    try {
      return await op();
    } catch (err) {
      this.failed(err);
      return undefined;
    }
  }

  private async write(op: () => Promise<unknown>): Promise<void> {
    if (!this.usable) return;
    try {
      await op();
    } catch (err) {
      this.failed(err);
    }
  }

  /**
   * Clear now, and once more a little later: a request that read the link from storage just
   * before the delete may write its answer to the cache just after the first clear.
   */
  private async clearTwice(op: Clear): Promise<void> {
    await this.clear(op);
    setTimeout(() => {
      if (!this.closed) void this.clear(op);
    }, RECLEAR_MS).unref();
  }

  /** Run a clear now, or queue it for when Redis is back: a clear is never lost silently. */
  private async clear(op: Clear): Promise<void> {
    if (this.usable) {
      try {
        await op(this.client);
        return;
      } catch (err) {
        this.failed(err);
        if (isReplyError(err)) return;
      }
    }
    if (this.pending.length >= MAX_PENDING) {
      if (!this.overflowed) {
        this.overflowed = true;
        this.log.error(
          { redis: this.where, pending: this.pending.length },
          'redis blob descriptor cache: too many clears waiting for Redis; the cache stays off in this process. ' +
            'Flush the cache (redis-cli -n <db> FLUSHDB) and restart to use it again',
        );
      }
      return;
    }
    this.pending.push(op);
  }

  private failed(err: unknown): void {
    // A refused command (wrong type, ACL) is Redis answering: log it, keep the cache on.
    if (isReplyError(err)) {
      this.log.warn({ redis: this.where, err: (err as Error).message }, 'redis blob descriptor cache: command refused');
      return;
    }
    this.down(err as Error);
  }

  private down(err: Error): void {
    if (this.closed || !this.usable) return;
    this.usable = false;
    this.log.warn(
      { redis: this.where, err: err.message },
      'redis blob descriptor cache unavailable: serving from storage until it returns',
    );
    // ioredis says 'ready' after a reconnect; a connection that stays up but stopped answering
    // in time (or a replay that failed) is found by PINGing.
    this.probe ??= setInterval(() => {
      if (this.client.status !== 'ready') return;
      this.client.ping().then(
        () => void this.resume(),
        () => undefined,
      );
    }, PROBE_MS);
    this.probe.unref();
  }

  /** Replay the queued clears, then use the cache again. */
  private async resume(): Promise<void> {
    if (this.usable || this.resuming || this.closed || this.overflowed) return;
    this.resuming = true;
    try {
      while (this.pending.length > 0) {
        await this.pending[0]!(this.client);
        this.pending.shift();
      }
      if (this.probe) clearInterval(this.probe);
      this.probe = null;
      this.usable = true;
      this.log.info({ redis: this.where }, 'redis blob descriptor cache available again');
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'redis blob descriptor cache: replaying clears failed; will retry');
    } finally {
      this.resuming = false;
    }
  }
}

/** Distribution's stat: digest and size must be there (an old "length" field is a miss). */
function descriptorOf(reply: (string | null)[]): CachedDescriptor | undefined {
  const [digest, size] = reply;
  if (digest == null || size == null || !/^\d+$/.test(size)) return undefined;
  return { digest, size: Number(size) };
}

/** HMSET digest, size; HSETNX mediatype: as Distribution writes the global hash. */
function setGlobal(client: RedisClient, desc: CachedDescriptor): Promise<unknown> {
  return Promise.all([
    client.hset(blobKey(desc.digest), 'digest', desc.digest, 'size', String(desc.size)),
    client.hsetnx(blobKey(desc.digest), 'mediatype', OCTET_STREAM),
  ]);
}
