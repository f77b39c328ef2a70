// Compares a few behaviours with the real Distribution 2.8 binary
// (Debian's docker-registry) when it is installed; skipped otherwise.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/index.js';

const BIN = '/usr/bin/docker-registry';
const skip = existsSync(BIN) ? false : 'docker-registry is not installed';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'wharf-compat-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `docker-registry serve` until it listens (then stops it) or exits; returns its output. */
function distribution(yaml: string, env: Record<string, string> = {}): Promise<{ listening: boolean; output: string }> {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(file, yaml);
  return new Promise((resolve) => {
    const child = spawn(BIN, ['serve', file], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let listening = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (!listening && output.includes('listening on')) {
        listening = true;
        child.kill('SIGKILL');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ listening, output });
    });
  });
}

function wharf(yaml: string, env: Record<string, string> = {}): { ok: boolean; output: string } {
  try {
    const r = parseConfig(yaml, env, 'c.yml');
    return { ok: true, output: JSON.stringify(r.config.storage.driver) };
  } catch (err) {
    return { ok: false, output: (err as Error).message };
  }
}

const HTTP = 'http:\n  addr: 127.0.0.1:0\n';

describe('agreement with docker-registry', { skip }, () => {
  it('rejects a configuration without storage', async () => {
    const yaml = `version: 0.1\n${HTTP}`;
    const d = await distribution(yaml);
    assert.match(d.output, /no storage configuration provided/);
    assert.match(wharf(yaml).output, /no storage configuration provided/);
  });

  it('rejects two storage drivers, from the file or added by the environment', async () => {
    const two = `version: 0.1\nstorage:\n  inmemory:\n  s3:\n    bucket: b\n${HTTP}`;
    assert.match((await distribution(two)).output, /must provide exactly one storage type/);
    assert.match(wharf(two).output, /must provide exactly one storage type/);

    const one = `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\n${HTTP}`;
    const env = { REGISTRY_STORAGE_S3_BUCKET: 'b' };
    assert.match((await distribution(one, env)).output, /multiple storage drivers/);
    assert.match(wharf(one, env).output, /must provide exactly one storage type/);
  });

  it('lets REGISTRY_STORAGE replace the whole storage section', async () => {
    const yaml = `version: 0.1\nstorage:\n  filesystem:\n    maxthreads: abc\n${HTTP}`;
    const env = { REGISTRY_STORAGE: 'inmemory' };
    assert.equal((await distribution(yaml, env)).listening, true);
    assert.deepEqual(wharf(yaml, env), { ok: true, output: '{"name":"inmemory","options":{}}' });
    assert.equal((await distribution(yaml)).listening, false, 'without the override the file is broken');
    assert.equal(wharf(yaml).ok, false);
  });

  it('rejects an unsupported version', async () => {
    const yaml = `version: 0.2\nstorage: inmemory\n${HTTP}`;
    assert.match((await distribution(yaml)).output, /unsupported version: "0.2"/);
    assert.match(wharf(yaml).output, /unsupported version: "0.2"/);
  });
});
