import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = join(process.cwd(), 'bin', 'wharf.js');

function wharf(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });
}

describe('wharf command line', () => {
  it('--version prints the package version', () => {
    const r = wharf(['--version']);
    assert.equal(r.status, 0);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    assert.equal(r.stdout.trim(), `wharf ${pkg.version}`);
  });

  it('help lists the commands', () => {
    const r = wharf(['help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /serve \[CONFIG\]/);
  });

  it('an unknown command fails with usage', () => {
    const r = wharf(['frobnicate']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
  });

  it('a missing configuration file is one clear line', () => {
    const r = wharf(['serve', '/nonexistent/config.yml']);
    assert.equal(r.status, 1);
    assert.match(r.stderr.trim(), /^wharf: cannot read configuration file "\/nonexistent\/config.yml": no such file/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  it('REGISTRY_CONFIGURATION_PATH names the file; an unsupported feature stops start-up naming the key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-cli-'));
    const file = join(dir, 'config.yml');
    writeFileSync(file, 'version: 0.1\nstorage:\n  inmemory: {}\ncompatibility:\n  schema1:\n    enabled: true\n');
    const r = wharf(['serve'], { REGISTRY_CONFIGURATION_PATH: file });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /compatibility\.schema1: not supported yet/);
  });

  it('an invalid value names the key path and its environment variable', () => {
    const r = wharf(['serve'], { REGISTRY_STORAGE: 'inmemory', REGISTRY_HTTP_ADDR: '127.0.0.1:0', REGISTRY_STORAGE_DELETE_ENABLED: 'maybe' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /storage\.delete\.enabled \(REGISTRY_STORAGE_DELETE_ENABLED\)/);
  });

  it('serve with no configuration starts the embedded default (filesystem under ./data) and stops on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-cli-'));
    const child = spawn(process.execPath, [BIN, 'serve'], { cwd: dir, env: { ...process.env, REGISTRY_HTTP_ADDR: '127.0.0.1:0' } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const deadline = Date.now() + 15_000;
    while (!/listening on/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(err, /config="embedded default"/);
    assert.match(err, new RegExp(`rootdirectory=${join(dir, 'data').replace(/[/.]/g, '\\$&')}`));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 0);
  });
});
