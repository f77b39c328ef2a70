/** The redis blob-descriptor cache for the offline commands (garbage-collect, delete-repository). */
import type { Config } from '../config/index.js';
import { redisConnection } from '../config/redis.js';
import type { RedisDescriptorCache } from '../registry/redis-cache.js';

/** Open it when `storage.cache.blobdescriptor` is redis; a Redis that cannot be used throws a message naming the key. */
export async function openRedisCache(config: Config): Promise<RedisDescriptorCache | undefined> {
  if (config.storage.cache.blobdescriptor !== 'redis') return undefined;
  const connection = redisConnection(config.redis);
  if (!connection) return undefined; // the configuration check refuses this
  // Loaded only here: without a redis cache, garbage-collect need not load pino and the mail hook.
  const log = (await import('./logging.js')).makeLogger({ level: 'warn', formatter: 'text', fields: {} });
  return (await import('../registry/redis-cache.js')).RedisDescriptorCache.open(connection, log);
}
