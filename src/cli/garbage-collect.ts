/** `wharf garbage-collect CONFIG [--dry-run|-d] [--delete-untagged|-m] [--quiet|-q]`, as `registry garbage-collect`. */
import { loadConfig } from '../config/index.js';
import { markAndSweep } from '../gc/mark-sweep.js';
import { makeDriver } from '../storage/drivers.js';
import { openRedisCache } from './redis-cli.js';

const FLAGS: Record<string, 'dryRun' | 'removeUntagged' | 'quiet'> = {
  '-d': 'dryRun',
  '--dry-run': 'dryRun',
  '-m': 'removeUntagged',
  '--delete-untagged': 'removeUntagged',
  '-q': 'quiet',
  '--quiet': 'quiet',
};

export const GC_USAGE = `Usage: wharf garbage-collect CONFIG [flags]

Deletes blobs no manifest references. Run it while no registry writes to the storage
(stopped, or storage.maintenance.readonly enabled).

Flags:
  -d, --dry-run           do everything except remove anything
  -m, --delete-untagged   delete manifests that no tag points at (keeping the children of
                          tagged indexes and the referrers of kept manifests)
  -q, --quiet             print only the summary`;

export async function garbageCollect(args: string[]): Promise<number> {
  const flags = { dryRun: false, removeUntagged: false, quiet: false };
  const positional: string[] = [];
  for (const arg of args) {
    if (arg === '-h' || arg === '--help') {
      console.log(GC_USAGE);
      return 0;
    }
    const flag = FLAGS[arg];
    if (flag) flags[flag] = true;
    else if (arg.startsWith('-')) {
      console.error(`wharf garbage-collect: unknown flag ${arg}\n\n${GC_USAGE}`);
      return 2;
    } else positional.push(arg);
  }
  const path = positional[0] ?? process.env.REGISTRY_CONFIGURATION_PATH;
  if (!path || positional.length > 1) {
    console.error(`wharf garbage-collect: expected one configuration file\n\n${GC_USAGE}`);
    return 2;
  }
  const { config, warnings } = loadConfig({ path, env: process.env });
  for (const w of warnings) console.error(`warning: ${w}`);
  // Nothing else runs in this process: the filesystem driver reads synchronously (no thread-pool hops).
  const driver = await makeDriver(config.storage.driver.name, config.storage.driver.options as Record<string, unknown>, { offline: true });
  // With a redis cache, what is deleted is cleared there too; Redis that cannot be used stops GC before it deletes anything.
  const redis = await openRedisCache(config);
  const summary = /^\n?\d+ blobs marked/;
  // Tens of thousands of lines: gathered and written in large pieces, not one write each.
  let pending: string[] = [];
  const flush = () => {
    if (pending.length > 0) process.stdout.write(`${pending.join('\n')}\n`);
    pending = [];
  };
  let result;
  try {
    result = await markAndSweep(driver, {
      dryRun: flags.dryRun,
      removeUntagged: flags.removeUntagged,
      emit: (line) => {
        if (flags.quiet && !summary.test(line)) return;
        pending.push(line);
        if (pending.length >= 4096) flush();
      },
      descriptors: redis,
    });
  } catch (err) {
    flush();
    if (!redis) throw err;
    console.error(
      `wharf garbage-collect: ${(err as Error).message}\n` +
        'The redis blob descriptor cache may still describe deleted blobs: run garbage-collect again once Redis answers, ' +
        'or empty the cache database (redis-cli -n <redis.db> FLUSHDB).',
    );
    return 1;
  } finally {
    await redis?.close();
  }
  flush();
  for (const problem of result.problems) console.error(`problem: ${problem}`);
  if (result.cacheCleared) {
    const c = result.cacheCleared;
    console.error(`redis blob descriptor cache: removed ${c.blobs} blob descriptors and ${c.repositoryEntries} repository entries storage no longer backs`);
  }
  return 0;
}
