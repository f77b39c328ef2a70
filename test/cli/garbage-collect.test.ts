import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = join(process.cwd(), 'bin', 'wharf.js');

/** Records every module URL the process resolves through the ESM loader into $MODULES_OUT. */
const RECORDER =
  "import { register } from 'node:module';\n" +
  'register(`data:text/javascript,${encodeURIComponent(' +
  JSON.stringify(
    "import { appendFileSync } from 'node:fs';\n" +
      'export async function resolve(specifier, context, next) {\n' +
      '  const r = await next(specifier, context);\n' +
      "  appendFileSync(process.env.MODULES_OUT, r.url + '\\n');\n" +
      '  return r;\n' +
      '}\n',
  ) +
  ')}`);\n';

describe('wharf garbage-collect start-up', () => {
  it('loads neither the logger and mail hook nor a cloud SDK, Redis or the server (they are start-up time)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-gc-cli-'));
    try {
      const config = join(dir, 'config.yml');
      writeFileSync(config, `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n`);
      writeFileSync(join(dir, 'recorder.mjs'), RECORDER);
      const out = join(dir, 'modules.txt');
      const r = spawnSync(process.execPath, ['--import', join(dir, 'recorder.mjs'), BIN, 'garbage-collect', config], {
        encoding: 'utf8',
        env: { ...process.env, MODULES_OUT: out },
        timeout: 20_000,
      });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /0 blobs marked, 0 blobs and 0 manifests eligible for deletion/);
      const modules = readFileSync(out, 'utf8').split('\n').filter(Boolean);
      assert.ok(modules.some((m) => m.endsWith('/dist/src/storage/filesystem-offline.js')), 'the offline filesystem driver is used');
      assert.ok(modules.some((m) => m.includes('/node_modules/yaml/')), 'the recorder sees package imports');
      const heavy = modules.filter((m) =>
        /\/node_modules\/(pino|nodemailer|@aws-sdk|@azure|@google-cloud|ali-oss|ioredis|prom-client|@opentelemetry)\/|\/dist\/src\/(server|proxy|notifications)\//.test(m),
      );
      assert.deepEqual(heavy, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
