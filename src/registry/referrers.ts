/**
 * The referrers index (OCI 1.1). Distribution 2.8 keeps none, so Wharf adds one beside the
 * layout Distribution knows: `<name>/_manifests/referrers/<alg>/<subject hex>/<alg>/<hex>/link`.
 * Distribution ignores this directory; its own code never reads or walks it.
 */
import { isNotFound, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';

function dir(name: string, subject: string): string {
  const revisions = pathFor({ kind: 'manifestRevisionsDir', name });
  const manifests = revisions.slice(0, revisions.lastIndexOf('/'));
  return `${manifests}/referrers/${subject.replace(':', '/')}`;
}

export class ReferrersIndex {
  constructor(private readonly driver: StorageDriver) {}

  async add(name: string, subject: string, referrer: string): Promise<void> {
    await this.driver.putContent(`${dir(name, subject)}/${referrer.replace(':', '/')}/link`, Buffer.from(referrer));
  }

  async remove(name: string, subject: string, referrer: string): Promise<void> {
    try {
      await this.driver.delete(`${dir(name, subject)}/${referrer.replace(':', '/')}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async list(name: string, subject: string): Promise<string[]> {
    const found: string[] = [];
    let algorithms: string[];
    try {
      algorithms = await this.driver.list(dir(name, subject));
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
    for (const algDir of algorithms) {
      const alg = algDir.slice(algDir.lastIndexOf('/') + 1);
      for (const hexDir of await this.driver.list(algDir).catch(() => [] as string[])) {
        found.push(`${alg}:${hexDir.slice(hexDir.lastIndexOf('/') + 1)}`);
      }
    }
    return found;
  }
}
