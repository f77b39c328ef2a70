/**
 * The catalog: repositories are the directories under `repositories/` that hold a
 * `_layers` directory, as Distribution 2.8 decides (a repository with blobs and no
 * manifest yet is listed). The walk never descends into a
 * repository's own `_layers`, `_manifests` or `_uploads` trees.
 */
import { isNotFound, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';

export async function listRepositories(driver: StorageDriver): Promise<string[]> {
  const root = pathFor({ kind: 'repositoriesRoot' });
  const found: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    let children: string[];
    try {
      children = await driver.list(dir);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    const names = children.map((c) => c.slice(c.lastIndexOf('/') + 1));
    if (names.includes('_layers')) found.push(dir.slice(root.length + 1));
    for (let i = 0; i < children.length; i++) {
      if (names[i]!.startsWith('_')) continue;
      await visit(children[i]!);
    }
  };
  await visit(root);
  return found.sort();
}
