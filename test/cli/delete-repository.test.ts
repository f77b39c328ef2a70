import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from '../../src/registry/registry.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';

const BIN = join(process.cwd(), 'bin', 'wharf.js');
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function layout(root: string): Promise<string> {
  const registry = new Registry(new FilesystemDriver({ rootdirectory: root }), { deleteEnabled: true });
  const data = Buffer.from('layer of team and team/app');
  for (const name of ['team', 'team/app']) {
    const upload = await registry.uploads.start(name);
    await registry.uploads.finish(name, upload.id, sha(data), [data]);
  }
  return sha(data);
}

function wharf(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
}

describe('wharf delete-repository', () => {
  it('deletes the named repository, keeps nested ones and blobs; fails clearly for unknown names and when deletes are off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-delrepo-'));
    const root = join(dir, 'data');
    const digest = await layout(root);
    const config = join(dir, 'config.yml');
    writeFileSync(config, `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n  delete:\n    enabled: true\n`);
    const repos = join(root, 'docker/registry/v2/repositories');

    const ok = wharf(['delete-repository', config, 'team']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /deleted repository team/);
    assert.equal(existsSync(join(repos, 'team/_layers')), false);
    assert.equal(existsSync(join(repos, 'team/app/_layers')), true);
    const hex = digest.slice(7);
    assert.ok(existsSync(join(root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data')));

    const unknown = wharf(['delete-repository', config, 'nobody/here']);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /nobody\/here: repository name not known to registry/);

    writeFileSync(config, `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n`);
    const off = wharf(['delete-repository', config, 'team/app']);
    assert.equal(off.status, 1);
    assert.match(off.stderr, /storage\.delete\.enabled/);
    assert.equal(existsSync(join(repos, 'team/app/_layers')), true);
  });
});
