// `wharf garbage-collect` against Distribution 2.8's `docker-registry garbage-collect` on identical
// copies of one data directory: both must leave exactly the same files.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Registry } from '../../src/registry/registry.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { imageWriter, sha } from '../gc/image-writer.js';
import { ROOT, requireTools, run, tempDir } from './harness.js';


/** Every file under `dir` with its content hash: what a user's disk holds. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), sha(fs.readFileSync(p)));
    }
  };
  walk(dir);
  return out;
}

function configFor(dir: string): string {
  const file = path.join(dir, '..', `${path.basename(dir)}.yml`);
  fs.writeFileSync(file, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n`);
  return file;
}

/** A layout written by Wharf: shared layers, a deleted manifest, a moved tag, orphan uploads. */
async function buildLayout(dir: string): Promise<void> {
  const registry = new Registry(new FilesystemDriver({ rootdirectory: dir }), { deleteEnabled: true });
  const { blob, image } = imageWriter(registry, 2048);
  const base = await blob('team/app');
  await registry.blobs.mount('team/api', 'team/app', base.digest);
  await image('team/app', 'v1', [base, await blob('team/app')]);
  await image('team/app', 'v2', [base, await blob('team/app')]);
  await image('team/app', 'v2', [base, await blob('team/app')]); // v2 moves: the old one is untagged
  await image('team/api', 'stable', [base, await blob('team/api')]);
  const doomed = await image('team/api', 'old', [await blob('team/api')]);
  await registry.manifests.delete('team/api', doomed.digest);
  await blob('lonely'); // a blob no manifest references
}

describe('garbage-collect agrees with docker-registry garbage-collect', () => {
  let pristine: string;
  before(async () => {
    requireTools('docker-registry');
    pristine = path.join(tempDir('gc-compare'), 'data');
    fs.mkdirSync(pristine);
    await buildLayout(pristine);
  });

  for (const flags of [[], ['--delete-untagged']]) {
    it(`same files left after ${flags.join(' ') || 'a plain run'}`, async () => {
      const work = tempDir('gc-run');
      const ours = path.join(work, 'wharf');
      const theirs = path.join(work, 'distribution');
      fs.cpSync(pristine, ours, { recursive: true });
      fs.cpSync(pristine, theirs, { recursive: true });
      await run('docker-registry', ['garbage-collect', configFor(theirs), ...flags], { env: { AWS_CA_BUNDLE: undefined } });
      const out = await run(process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'garbage-collect', configFor(ours), ...flags]);
      const before = snapshot(pristine);
      const left = snapshot(ours);
      assert.ok(left.size < before.size, 'something was collected');
      assert.deepEqual([...left.keys()].sort(), [...snapshot(theirs).keys()].sort());
      assert.match(out.stdout, /\d+ blobs marked, \d+ blobs and \d+ manifests eligible for deletion/);
    });
  }

  it('--dry-run changes nothing', async () => {
    const copy = path.join(tempDir('gc-dry'), 'data');
    fs.cpSync(pristine, copy, { recursive: true });
    const out = await run(process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'garbage-collect', configFor(copy), '-d', '-m']);
    assert.match(out.stdout, /blob eligible for deletion: sha256:/);
    assert.deepEqual(snapshot(copy), snapshot(pristine));
  });
});
