/** `wharf delete-repository CONFIG NAME…`: the API's repository deletion, run against storage directly. */
import { loadConfig } from '../config/index.js';
import { RegistryError } from '../registry/errors.js';
import { checkName } from '../registry/names.js';
import { DEFAULT_CACHE_OPTIONS } from '../registry/cache.js';
import type { RedisDescriptorCache } from '../registry/redis-cache.js';
import { Registry } from '../registry/registry.js';
import { makeDriver } from '../storage/drivers.js';
import { openRedisCache } from './redis-cli.js';

export const DELETE_REPOSITORY_USAGE = `Usage: wharf delete-repository CONFIG NAME [NAME...]

Deletes each repository's tags, manifest revisions, layer links and uploads (not repositories
nested below it). Blobs stay until \`wharf garbage-collect\`. Needs storage.delete.enabled.`;

export async function deleteRepositoryCommand(args: string[]): Promise<number> {
  if (args.includes('-h') || args.includes('--help')) {
    console.log(DELETE_REPOSITORY_USAGE);
    return 0;
  }
  const [path, ...names] = args;
  if (!path || names.length === 0) {
    console.error(`wharf delete-repository: expected a configuration file and at least one repository name\n\n${DELETE_REPOSITORY_USAGE}`);
    return 2;
  }
  const { config } = loadConfig({ path, env: process.env });
  const driver = await makeDriver(config.storage.driver.name, config.storage.driver.options as Record<string, unknown>);
  const redis = await openRedisCache(config);
  const registry = new Registry(driver, {
    deleteEnabled: config.storage.delete.enabled,
    cache: { ...DEFAULT_CACHE_OPTIONS, shared: redis },
  });
  try {
    return await deleteAll(registry, names, redis);
  } finally {
    await redis?.close();
  }
}

async function deleteAll(registry: Registry, names: string[], redis: RedisDescriptorCache | undefined): Promise<number> {
  let failed = 0;
  for (const name of names) {
    try {
      checkName(name);
      registry.requireDeleteEnabled();
      await registry.deleteRepository(name);
      console.log(`deleted repository ${name}`);
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      console.error(`wharf delete-repository: ${name}: ${err.message}`);
      failed++;
    }
  }
  if (redis && !(await redis.drain(10_000))) {
    console.error(
      'wharf delete-repository: Redis stopped answering: the redis blob descriptor cache may still list blobs of the deleted ' +
        `repositories; remove their keys once it answers: ${names.map((n) => `repository::${n}::blobs*`).join(' ')}`,
    );
    return 1;
  }
  return failed === 0 ? 0 : 1;
}
