/**
 * A Redis connection for the blob-descriptor cache (ioredis): a single server, a Redis Cluster
 * or a Sentinel-watched master, as `redis.addr`/`redis.addrs`/`redis.mastername` say.
 *
 * The cache must never slow down or fail a request: commands are not queued while Redis is
 * away (`enableOfflineQueue: false`), each is bounded by the read/write timeout, and after a
 * timeout the cache is suspended until a PING answers. ioredis reconnects by itself.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { describeRedis, type RedisConnection } from '../config/redis.js';

export type RedisClient = Redis | Cluster;

/** Read the TLS files now, so a bad path is a start-up error naming the key. */
function tlsOptions(tls: NonNullable<RedisConnection['tls']>): ConnectionOptions {
  const read = (key: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`${key}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  const out: ConnectionOptions = {};
  if (tls.certificate && tls.key) {
    out.cert = read('redis.tls.certificate', tls.certificate);
    out.key = read('redis.tls.key', tls.key);
  }
  if (tls.ca.length > 0) out.ca = tls.ca.map((p) => read('redis.tls.rootcas', p));
  return out;
}

/** ioredis options for the connection; exported for tests. */
export function ioredisOptions(c: RedisConnection): RedisOptions {
  return {
    username: c.username,
    password: c.password,
    db: c.mode === 'cluster' ? undefined : c.db,
    connectionName: c.clientName,
    connectTimeout: c.connectTimeoutMs,
    commandTimeout: c.commandTimeoutMs,
    protocol: c.protocol,
    tls: c.tls ? tlsOptions(c.tls) : undefined,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: true,
    // Reconnect forever, backing off between the configured bounds.
    retryStrategy: (times) => Math.min(c.minBackoffMs * 2 ** Math.min(times, 16), Math.max(c.maxBackoffMs, c.minBackoffMs)),
  };
}

function createClient(c: RedisConnection): RedisClient {
  const base = ioredisOptions(c);
  if (c.mode === 'cluster') {
    const { retryStrategy, enableOfflineQueue, enableAutoPipelining, ...redisOptions } = base;
    const options: ClusterOptions = {
      redisOptions,
      enableOfflineQueue,
      enableAutoPipelining,
      clusterRetryStrategy: (times) => retryStrategy?.(times) ?? 1000,
      scaleReads: c.clusterReads,
      maxRedirections: c.maxRedirects,
      slotsRefreshTimeout: c.connectTimeoutMs,
    };
    return new Cluster(c.nodes, options);
  }
  if (c.mode === 'sentinel') {
    return new Redis({
      ...base,
      sentinels: c.nodes,
      name: c.masterName,
      sentinelUsername: c.sentinelUsername,
      sentinelPassword: c.sentinelPassword,
      sentinelCommandTimeout: c.commandTimeoutMs,
      enableTLSForSentinelMode: !!c.tls,
    });
  }
  return new Redis({ ...base, host: c.nodes[0]!.host, port: c.nodes[0]!.port });
}

/** Errors that say the server answered (a wrong type, a refused command), not that it is away. */
export function isReplyError(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'ReplyError';
}

/**
 * Connect and wait until Redis answers. A server that cannot be reached, a refused password or
 * a database that does not exist stops start-up with a message naming the configuration key.
 */
export async function connectRedis(c: RedisConnection, log: Logger): Promise<RedisClient> {
  const client = createClient(c);
  const where = describeRedis(c);
  const deadline = c.connectTimeoutMs + c.commandTimeoutMs + 1000;
  // ioredis emits an error on every failed attempt; without a listener it prints them itself.
  const onError = (err: Error) => log.debug({ err: err.message }, 'redis connection error');
  client.on('error', onError);
  try {
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: Error) => {
        clearTimeout(timer);
        client.off('ready', onReady);
        client.off('error', settle);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => settle();
      const timer = setTimeout(() => settle(new Error(`no answer within ${deadline} ms`)), deadline);
      client.once('ready', onReady);
      client.once('error', settle);
    });
    // The ready check does not prove that commands are allowed (ACLs) on this database.
    await client.ping();
  } catch (err) {
    client.disconnect();
    throw new Error(
      `${c.addrKey}: cannot use Redis at ${where}: ${(err as Error).message} ` +
        `(storage.cache.blobdescriptor is redis; start Redis, fix the redis section, or remove the cache setting)`,
    );
  }
  return client;
}

/** Every node that holds keys: the masters of a cluster, else the one server. */
export function keyHolders(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}
