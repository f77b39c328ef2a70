/**
 * Offline garbage collection with Distribution's semantics (`registry garbage-collect`):
 * mark every blob a manifest of any repository references, then delete the blobs nobody
 * marked. With `removeUntagged`, manifests no tag points at are deleted first, except
 * (beyond Distribution 2.8) the children of a kept index (#3178) and the referrers of a
 * kept manifest, which stay. Layer links are left in place, as 2.8 leaves them; a link to
 * a swept blob answers BLOB_UNKNOWN. A damaged layout is reported and collection goes on.
 */
import type { StorageAfterSweep } from '../registry/cache.js';
import { listRepositories } from '../registry/catalog.js';
import { mapLimit, TaskPool } from '../registry/concurrency.js';
import { isNotFound, type StorageDriver } from '../storage/driver.js';
import { pathFor } from '../storage/paths.js';

export interface GCOptions {
  dryRun: boolean;
  removeUntagged: boolean;
  /** Each line Distribution would print (marking, eligibility, summary). */
  emit?: (line: string) => void;
  /** The shared blob-descriptor cache (redis): made to agree with storage after the sweep (Distribution #1803). */
  descriptors?: GCDescriptorCache;
  /**
   * Online collection: each unmarked blob is deleted only if `claim` grants it (null: keep it),
   * and `afterDelete` runs before the claim is released (in-process caches forget it there).
   */
  guard?: {
    claim(digest: string, modTime: Date): { release(): void } | null;
    afterDelete?(digest: string): Promise<void>;
  };
}

export interface GCDescriptorCache {
  /** Forget every blob storage no longer has and every repository entry without its layer link. */
  reconcile(storage: StorageAfterSweep): Promise<{ blobs: number; repositoryEntries: number }>;
}

export interface GCResult {
  marked: number;
  blobsDeleted: string[];
  manifestsDeleted: { name: string; digest: string }[];
  /** Problems found and stepped over: unreadable manifests, missing blobs. */
  problems: string[];
  /** What was removed from the shared descriptor cache, when there is one. */
  cacheCleared?: { blobs: number; repositoryEntries: number };
  /** Bytes of the deleted blobs. */
  bytesReclaimed: number;
}

interface Candidate {
  name: string;
  digest: string;
  tags: string[];
  subject?: string;
  references: string[];
}

const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/** Storage round trips dominate: keep this many in flight. */
const PARALLEL = 32;


async function listOrEmpty(driver: StorageDriver, path: string): Promise<string[]> {
  try {
    return await driver.list(path);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/** Digests of a repository's manifest revisions, from the directory names as Distribution reads them. */
async function revisions(driver: StorageDriver, name: string): Promise<string[]> {
  const out: string[] = [];
  for (const algDir of await listOrEmpty(driver, pathFor({ kind: 'manifestRevisionsDir', name }))) {
    for (const hexDir of await listOrEmpty(driver, algDir)) out.push(`${base(algDir)}:${base(hexDir)}`);
  }
  return out;
}

/** tag → digest its current link names. */
async function currentTags(driver: StorageDriver, name: string): Promise<Map<string, string>> {
  const tags = new Map<string, string>();
  for (const tagDir of await listOrEmpty(driver, pathFor({ kind: 'tagsDir', name }))) {
    const tag = base(tagDir);
    try {
      tags.set(tag, (await driver.getContent(pathFor({ kind: 'tagCurrentLink', name, tag }))).toString().trim());
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return tags;
}

interface ManifestRefs {
  references: string[];
  children: string[];
  subject?: string;
}

function digestsOf(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((d) => (d as { digest?: unknown })?.digest).filter((d): d is string => typeof d === 'string');
}

async function readRefs(driver: StorageDriver, digest: string): Promise<ManifestRefs> {
  const doc = JSON.parse((await driver.getContent(pathFor({ kind: 'blobData', digest }))).toString('utf8')) as Record<string, unknown>;
  const config = digestsOf(doc.config ? [doc.config] : []);
  const layers = digestsOf(doc.layers);
  const children = digestsOf(doc.manifests);
  const subject = digestsOf(doc.subject ? [doc.subject] : [])[0];
  return { references: [...config, ...layers, ...children], children, subject };
}

export async function markAndSweep(driver: StorageDriver, opts: GCOptions): Promise<GCResult> {
  const emit = opts.emit ?? (() => undefined);
  const marked = new Set<string>();
  const problems: string[] = [];
  const candidates: Candidate[] = [];
  const refsCache = new Map<string, ManifestRefs | null>();

  const refsOf = async (digest: string, name: string): Promise<ManifestRefs | null> => {
    if (!refsCache.has(digest)) {
      try {
        refsCache.set(digest, await readRefs(driver, digest));
      } catch (err) {
        problems.push(`${name}: manifest ${digest} cannot be read: ${(err as Error).message}`);
        emit(`${name}: failed to retrieve manifest for digest ${digest}: ${(err as Error).message} (skipped)`);
        refsCache.set(digest, null);
      }
    }
    return refsCache.get(digest)!;
  };

  /** Mark a manifest and, depth first, what it references; child manifests of this repository too. */
  const markManifest = async (name: string, digest: string, revisionsHere: Set<string>): Promise<void> => {
    const refs = await refsOf(digest, name);
    if (!refs) return;
    for (const d of refs.references) {
      if (marked.has(d)) continue;
      marked.add(d);
      emit(`${name}: marking blob ${d}`);
      if (revisionsHere.has(d)) await markManifest(name, d, revisionsHere);
    }
  };

  // Read every repository's revisions, tags and manifests with many requests in flight; then
  // mark in repository order, so the output reads as Distribution's does.
  const repos = await mapLimit(await listRepositories(driver), 4, async (name) => {
    const revs = await revisions(driver, name);
    const tags = opts.removeUntagged ? await currentTags(driver, name) : new Map<string, string>();
    await mapLimit(revs, PARALLEL, (digest) => refsOf(digest, name));
    return { name, revs, tags };
  });
  for (const { name, revs, tags } of repos) {
    emit(name);
    const here = new Set(revs);
    const tagged = new Set(tags.values());
    for (const digest of revs) {
      if (opts.removeUntagged && !tagged.has(digest)) {
        const refs = await refsOf(digest, name);
        candidates.push({ name, digest, tags: [...tags.keys()], subject: refs?.subject, references: refs?.references ?? [] });
        continue;
      }
      emit(`${name}: marking manifest ${digest} `);
      marked.add(digest);
      await markManifest(name, digest, here);
    }
  }

  // Untagged manifests that a kept manifest needs (index children) or that refer to one (referrers) stay.
  let doomed = candidates;
  for (let changed = true; changed; ) {
    changed = false;
    const still: Candidate[] = [];
    for (const c of doomed) {
      if (marked.has(c.digest) || (c.subject !== undefined && marked.has(c.subject))) {
        if (!marked.has(c.digest)) {
          marked.add(c.digest);
          emit(`${c.name}: marking manifest ${c.digest} (referrer of ${c.subject})`);
        }
        for (const d of c.references) marked.add(d);
        changed = true;
      } else still.push(c);
    }
    doomed = still;
  }
  for (const c of doomed) emit(`manifest eligible for deletion: ${c.name}@${c.digest}`);

  if (!opts.dryRun) {
    for (const c of doomed) {
      await deleteIfPresent(driver, pathFor({ kind: 'manifestRevisionDir', name: c.name, digest: c.digest }));
      for (const tag of c.tags) {
        const indexEntry = pathFor({ kind: 'tagIndexEntryLink', name: c.name, tag, digest: c.digest });
        await deleteIfPresent(driver, indexEntry.slice(0, indexEntry.lastIndexOf('/')));
      }
    }
  }

  const unmarked: string[] = [];
  const infoOf = new Map<string, { size: number; modTime: Date }>();
  // Every blob directory, for the descriptor cache (only gathered when there is one).
  const present = new Set<string>();
  const deleted = new Set<string>();
  const guard = opts.guard;
  const sweepBlob = async (digest: string): Promise<void> => {
    const claim = guard ? guard.claim(digest, infoOf.get(digest)!.modTime) : null;
    if (guard && !claim) return;
    try {
      await deleteIfPresent(driver, pathFor({ kind: 'blobDir', digest }));
      deleted.add(digest);
      await guard?.afterDelete?.(digest);
    } finally {
      claim?.release();
    }
  };
  // A blob found unmarked is deleted at once, while the listing goes on: deletes can wait on the
  // device (a filesystem that trims freed blocks), and the listing fills that time.
  const sweeper = opts.dryRun ? null : new TaskPool(PARALLEL);
  try {
    for (const algDir of await listOrEmpty(driver, pathFor({ kind: 'blobsRoot' }))) {
      const alg = base(algDir);
      const prefixes = await listOrEmpty(driver, algDir);
      const perPrefix = await mapLimit(prefixes, PARALLEL, async (prefixDir) => {
        const hexDirs = await listOrEmpty(driver, prefixDir);
        if (opts.descriptors) for (const hexDir of hexDirs) present.add(`${alg}:${base(hexDir)}`);
        const candidates = hexDirs.filter((hexDir) => !marked.has(`${alg}:${base(hexDir)}`));
        const withData = await mapLimit(candidates, 4, (hexDir) =>
          driver.stat(`${hexDir}/data`).then(
            (info) => {
              const digest = `${alg}:${base(hexDir)}`;
              infoOf.set(digest, info);
              sweeper?.add(() => sweepBlob(digest));
              return digest;
            },
            () => null,
          ),
        );
        return withData.filter((d): d is string => d !== null);
      });
      for (const list of perPrefix) unmarked.push(...list);
    }
  } catch (err) {
    await sweeper?.drain().catch(() => undefined);
    throw err;
  }
  emit(`\n${marked.size} blobs marked, ${unmarked.length} blobs and ${doomed.length} manifests eligible for deletion`);
  for (const digest of unmarked) emit(`blob eligible for deletion: ${digest}`);
  await sweeper?.drain();
  let cacheCleared: GCResult['cacheCleared'];
  if (!opts.dryRun && opts.descriptors) {
    for (const digest of deleted) present.delete(digest);
    cacheCleared = await opts.descriptors.reconcile({ blobExists: (d) => present.has(d), isLinked: (name, digest) => isLinked(driver, name, digest) });
  }
  return {
    cacheCleared,
    marked: marked.size,
    blobsDeleted: unmarked.filter((d) => deleted.has(d)),
    bytesReclaimed: [...deleted].reduce((n, d) => n + infoOf.get(d)!.size, 0),
    manifestsDeleted: opts.dryRun ? [] : doomed.map((c) => ({ name: c.name, digest: c.digest })),
    problems,
  };
}

/** Whether the layer link of `name` to `digest` is there (an empty link directory is not a link). */
async function isLinked(driver: StorageDriver, name: string, digest: string): Promise<boolean> {
  try {
    return (await driver.getContent(pathFor({ kind: 'layerLink', name, digest }))).toString('utf8').trim() === digest;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

async function deleteIfPresent(driver: StorageDriver, path: string): Promise<void> {
  try {
    await driver.delete(path);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
