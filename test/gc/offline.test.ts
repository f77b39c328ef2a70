// `wharf garbage-collect` runs mark and sweep on the offline filesystem driver (synchronous reads,
// in-place deletes). On copies of one damaged layout it must do exactly what the filesystem
// driver the server uses does: same files and directories left, same lines, same result.
import { before, after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { markAndSweep, type GCOptions, type GCResult } from '../../src/gc/mark-sweep.js';
import { Registry } from '../../src/registry/registry.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { OfflineFilesystemDriver } from '../../src/storage/filesystem-offline.js';
import { pathFor } from '../../src/storage/paths.js';
import { imageWriter, OCI_INDEX, OCI_MANIFEST, sha } from './image-writer.js';


/** Every file (with a hash of its content) and every directory below `dir`. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        out.push(`${path.relative(dir, p)}/`);
        walk(p);
      } else out.push(`${path.relative(dir, p)} ${sha(fs.readFileSync(p))}`);
    }
  };
  walk(dir);
  return out.sort();
}

/** Shared and orphan layers, a moved tag, a deleted manifest, an index with untagged children, a referrer, and damage. */
async function buildLayout(dir: string): Promise<void> {
  const driver = new FilesystemDriver({ rootdirectory: dir });
  const registry = new Registry(driver, { deleteEnabled: true });
  const { blob, image } = imageWriter(registry, 512);
  const base = await blob('team/app');
  await registry.blobs.mount('team/api', 'team/app', base.digest);
  await image('team/app', 'v1', [base, await blob('team/app')]);
  await image('team/app', 'v2', [base, await blob('team/app')]);
  await image('team/app', 'v2', [base, await blob('team/app')]); // v2 moves: the old one is untagged
  for (let i = 0; i < 40; i++) await image(`many/r${i % 4}`, `t${i}`, [await blob(`many/r${i % 4}`)]);
  const doomed = await image('team/api', 'old', [await blob('team/api')]);
  await registry.manifests.delete('team/api', doomed.digest);
  for (let i = 0; i < 30; i++) await blob('lonely'); // blobs no manifest references

  // A multi-arch index whose children are untagged, and a referrer of it.
  const amd = await image('multi/app', 'tmp-amd', [await blob('multi/app')]);
  const arm = await image('multi/app', 'tmp-arm', [await blob('multi/app')]);
  await registry.tags.untag('multi/app', 'tmp-amd');
  await registry.tags.untag('multi/app', 'tmp-arm');
  const index = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [amd, arm].map((m) => ({ mediaType: OCI_MANIFEST, digest: m.digest, size: m.size })) }),
  );
  const { digest: indexDigest } = await registry.manifests.put('multi/app', 'latest', index, OCI_INDEX);
  await image('multi/app', 'sig', [await blob('multi/app')], { subject: { mediaType: OCI_INDEX, digest: indexDigest, size: index.length } });
  await registry.tags.untag('multi/app', 'sig');

  // Damage: a manifest whose bytes are gone, a revision whose blob is not JSON, a blob
  // directory without data, a temp file and a directory no valid path can name.
  const broken = await image('damaged/app', 'v1', [await blob('damaged/app')]);
  fs.rmSync(path.join(dir, pathFor({ kind: 'blobDir', digest: broken.digest })), { recursive: true });
  const garbage = await blob('damaged/app', Buffer.from('not a manifest {'));
  fs.mkdirSync(path.join(dir, pathFor({ kind: 'manifestRevisionDir', name: 'damaged/app', digest: garbage.digest })), { recursive: true });
  fs.writeFileSync(path.join(dir, pathFor({ kind: 'manifestRevisionLink', name: 'damaged/app', digest: garbage.digest })), garbage.digest);
  const empty = sha('never written');
  fs.mkdirSync(path.join(dir, pathFor({ kind: 'blobDir', digest: empty })), { recursive: true });
  const prefixDir = path.dirname(path.join(dir, pathFor({ kind: 'blobDir', digest: empty })));
  fs.writeFileSync(path.join(prefixDir, `${path.basename(path.join(dir, pathFor({ kind: 'blobDir', digest: empty })))}~tmp~0123`), 'partial');
  fs.mkdirSync(path.join(dir, 'docker/registry/v2/blobs/sha256/lost+found'));
}

const sorted = (xs: string[]): string[] => [...xs].sort();

function canonical(r: GCResult): GCResult {
  const key = (m: { name: string; digest: string }): string => `${m.name}@${m.digest}`;
  return {
    ...r,
    blobsDeleted: sorted(r.blobsDeleted),
    manifestsDeleted: [...r.manifestsDeleted].sort((x, y) => key(x).localeCompare(key(y))),
    problems: sorted(r.problems),
  };
}

interface Run {
  result: GCResult;
  lines: string[];
  left: string[];
}

async function collect(dir: string, driver: FilesystemDriver, opts: Omit<GCOptions, 'emit'>): Promise<Run> {
  const lines: string[] = [];
  const result = await markAndSweep(driver, { ...opts, emit: (l) => lines.push(l) });
  return { result, lines, left: snapshot(dir) };
}

describe('garbage collection on the offline filesystem driver', () => {
  let work: string;
  let pristine: string;
  before(async () => {
    work = fs.mkdtempSync(path.join(tmpdir(), 'wharf-gc-offline-'));
    pristine = path.join(work, 'pristine');
    await buildLayout(pristine);
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  const cases: { label: string; opts: Omit<GCOptions, 'emit'> }[] = [
    { label: 'a plain run', opts: { dryRun: false, removeUntagged: false } },
    { label: '--delete-untagged', opts: { dryRun: false, removeUntagged: true } },
    { label: '--dry-run --delete-untagged', opts: { dryRun: true, removeUntagged: true } },
  ];
  for (const { label, opts } of cases) {
    it(`deletes exactly what the filesystem driver deletes: ${label}`, async () => {
      const served = path.join(work, `served-${label.replace(/\W+/g, '')}`);
      const offline = path.join(work, `offline-${label.replace(/\W+/g, '')}`);
      fs.cpSync(pristine, served, { recursive: true });
      fs.cpSync(pristine, offline, { recursive: true });
      const before = snapshot(pristine);
      const a = await collect(served, new FilesystemDriver({ rootdirectory: served }), opts);
      const b = await collect(offline, new OfflineFilesystemDriver({ rootdirectory: offline }), opts);

      assert.deepEqual(b.left, a.left, 'the same files and directories are left');
      // Deletes run concurrently, so the order of their lines and results varies from run to run.
      assert.deepEqual(sorted(b.lines), sorted(a.lines), 'the same lines are printed');
      assert.deepEqual(canonical(b.result), canonical(a.result));
      // What was found: the two damaged manifests, and the blobs nobody references.
      assert.equal(a.result.problems.length, 2, a.result.problems.join('\n'));
      assert.ok(a.lines.some((l) => /^damaged\/app: failed to retrieve manifest for digest sha256:/.test(l)));
      if (opts.dryRun) {
        assert.deepEqual(b.left, before, 'a dry run changes nothing');
        assert.deepEqual(b.result.blobsDeleted, []);
        assert.ok(b.lines.filter((l) => l.startsWith('blob eligible for deletion: ')).length >= 31);
      } else {
        assert.ok(b.result.blobsDeleted.length >= 31, `${b.result.blobsDeleted.length} blobs deleted`);
        assert.ok(b.left.length < before.length, 'something was collected');
        for (const digest of b.result.blobsDeleted) {
          assert.ok(!fs.existsSync(path.join(offline, pathFor({ kind: 'blobDir', digest }))), `${digest} is gone, directory and all`);
        }
        assert.ok(b.result.bytesReclaimed > 0);
      }
      // The damage is stepped over, not repaired: the empty blob directory and hidden entries stay.
      assert.ok(b.left.some((l) => l.includes('~tmp~0123')));
      assert.ok(b.left.some((l) => l.startsWith('docker/registry/v2/blobs/sha256/lost+found/')));
      if (opts.removeUntagged) {
        // The index's untagged children and its referrer are kept; the moved tag's old manifest is not.
        const deleted = b.result.manifestsDeleted.map((m) => m.name);
        assert.ok(!deleted.includes('multi/app'), JSON.stringify(b.result.manifestsDeleted));
        if (!opts.dryRun) assert.ok(deleted.includes('team/app'));
      }
    });
  }

  it('a collection that finds nothing to delete deletes nothing', async () => {
    const once = path.join(work, 'twice');
    fs.cpSync(pristine, once, { recursive: true });
    const first = await collect(once, new OfflineFilesystemDriver({ rootdirectory: once }), { dryRun: false, removeUntagged: false });
    assert.ok(first.result.blobsDeleted.length > 0);
    const again = await collect(once, new OfflineFilesystemDriver({ rootdirectory: once }), { dryRun: false, removeUntagged: false });
    assert.deepEqual(again.result.blobsDeleted, []);
    assert.deepEqual(again.left, first.left);
  });
});
