/**
 * Upload purging (`storage.maintenance.uploadpurging`): uploads older than `age` are
 * removed, as Distribution does, so abandoned pushes do not fill the disk. An upload whose
 * `startedat` is missing or unreadable counts as old.
 */
import { isNotFound, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';

export interface PurgeResult {
  purged: string[];
  errors: string[];
}

export async function purgeUploads(driver: StorageDriver, olderThan: Date, dryRun: boolean): Promise<PurgeResult> {
  const result: PurgeResult = { purged: [], errors: [] };
  const root = pathFor({ kind: 'repositoriesRoot' });
  const visit = async (dir: string): Promise<void> => {
    let children: string[];
    try {
      children = await driver.list(dir);
    } catch (err) {
      if (!isNotFound(err)) result.errors.push(`${dir}: ${(err as Error).message}`);
      return;
    }
    for (const child of children) {
      const base = child.slice(child.lastIndexOf('/') + 1);
      if (base === '_uploads') await purgeDir(driver, child, olderThan, dryRun, result);
      else if (!base.startsWith('_')) await visit(child);
    }
  };
  await visit(root);
  return result;
}

async function purgeDir(driver: StorageDriver, uploadsDir: string, olderThan: Date, dryRun: boolean, result: PurgeResult): Promise<void> {
  let uploads: string[];
  try {
    uploads = await driver.list(uploadsDir);
  } catch {
    return;
  }
  for (const upload of uploads) {
    let started = new Date(0);
    try {
      const text = (await driver.getContent(`${upload}/startedat`)).toString().trim();
      const parsed = new Date(text);
      if (!Number.isNaN(parsed.getTime())) started = parsed;
    } catch {
      // missing startedat: treated as old
    }
    if (started >= olderThan) continue;
    result.purged.push(upload);
    if (dryRun) continue;
    try {
      await driver.delete(upload);
    } catch (err) {
      if (!isNotFound(err)) result.errors.push(`${upload}: ${(err as Error).message}`);
    }
  }
}
