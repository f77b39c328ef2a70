// `wharf htpasswd FILE USER`: adds or updates a bcrypt entry, password from standard input.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const wharf = (args: string[], input: string) =>
  spawnSync(process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), ...args], { input, encoding: 'utf8' });

test('wharf htpasswd adds and updates bcrypt entries, keeps other lines, refuses bad input', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-htpasswd-cli-'));
  try {
    const file = path.join(dir, 'auth', 'htpasswd');
    const add = wharf(['htpasswd', file, 'alice'], 'first-pass\n');
    assert.equal(add.status, 0, add.stderr);
    assert.match(add.stderr, /Adding password for user alice/);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    fs.appendFileSync(file, '# a comment\nbob:$2y$05$abcdefghijklmnopqrstuuJ0V7LJWs6Gk9qT8VwL4TyF3yS0a6Zmi\n');
    const upd = wharf(['htpasswd', file, 'alice'], 'second-pass\r\n');
    assert.equal(upd.status, 0, upd.stderr);
    assert.match(upd.stderr, /Updating password for user alice/);
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 3, 'one alice entry, the comment and bob kept');
    const [user, hash] = lines[0]!.split(/:(.*)/s) as [string, string];
    assert.equal(user, 'alice');
    assert.match(hash, /^\$2[aby]\$10\$/);
    assert.ok(bcrypt.compareSync('second-pass', hash));
    assert.ok(!bcrypt.compareSync('first-pass', hash));
    assert.deepEqual(lines.slice(1), ['# a comment', 'bob:$2y$05$abcdefghijklmnopqrstuuJ0V7LJWs6Gk9qT8VwL4TyF3yS0a6Zmi']);

    assert.equal(wharf(['htpasswd', file, 'bad:user'], 'x\n').status, 2);
    assert.equal(wharf(['htpasswd', file], 'x\n').status, 2);
    const empty = wharf(['htpasswd', file, 'carol'], '\n');
    assert.equal(empty.status, 1);
    assert.match(empty.stderr, /empty password/);
    assert.ok(!fs.readFileSync(file, 'utf8').includes('carol'));
    assert.match(wharf(['help'], '').stdout, /htpasswd FILE USER/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
