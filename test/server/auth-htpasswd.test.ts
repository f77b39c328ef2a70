// auth.htpasswd in-process: Basic challenges, every bad credential, bcrypt variants, entries of other hash
// types reported and ignored, a missing file provisioned, reload without restart, the login cache, and
// logs that never hold a password.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { upsertEntry } from '../../src/cli/htpasswd.js';
import { basic, captureLog, pushAs, startAuthServer, type CapturedLog } from './auth-fixtures.js';
import { assertError, request, type TestServer } from './helpers.js';

const REALM = 'Wharf "test" realm';
const CHALLENGE = 'Basic realm="Wharf \\"test\\" realm"';

describe('auth.htpasswd', { timeout: 60_000 }, () => {
  let dir: string;
  let file: string;
  let server: TestServer;
  let logs: CapturedLog;
  const hash = (p: string) => bcrypt.hashSync(p, 4);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-htpasswd-'));
    file = path.join(dir, 'htpasswd');
    const b = hash('b-secret');
    fs.writeFileSync(
      file,
      [
        '# users',
        `alice:${hash('alice-secret').replace(/^\$2b\$/, '$2y$')}`,
        `bob:${b.replace(/^\$2b\$/, '$2a$')}`,
        `carol:${hash('carol:with:colons')}`,
        'dave:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=',
        'erin:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/',
        'no-colon-here',
        '',
      ].join('\n'),
    );
    logs = captureLog();
    server = await startAuthServer({ htpasswd: { realm: REALM, path: file } }, logs.log);
  });
  after(async () => {
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('entries of other hash types and malformed lines are reported at start-up with their line number', () => {
    const text = logs.text();
    assert.match(text, /line 5: the entry for user \\"dave\\" is not a bcrypt hash/);
    assert.match(text, /line 6: the entry for user \\"erin\\" is not a bcrypt hash/);
    assert.match(text, /line 7: no \\"user:hash\\" entry/);
    assert.doesNotMatch(text, /W6ph5Mm5Pz8G|HqJZimcKQFAM/, 'hashes are not logged');
  });

  test('no credentials: 401 UNAUTHORIZED with the Basic challenge on every route', async () => {
    for (const [method, p] of [['GET', '/v2/'], ['GET', '/v2/_catalog'], ['HEAD', '/v2/a/manifests/x'], ['POST', '/v2/a/blobs/uploads/'], ['DELETE', '/v2/a/manifests/x']]) {
      const res = await request(server, method!, p!);
      assert.equal(res.status, 401, `${method} ${p}`);
      assert.equal(res.headers['www-authenticate'], CHALLENGE);
      if (method !== 'HEAD') assertError(res, 401, 'UNAUTHORIZED');
    }
    const base = await request(server, 'GET', '/v2/');
    assert.equal(base.json().errors[0].detail, null);
    const push = await request(server, 'POST', '/v2/team/app/blobs/uploads/');
    assert.deepEqual(push.json().errors[0].detail, [
      { Type: 'repository', Class: '', Name: 'team/app', Action: 'pull' },
      { Type: 'repository', Class: '', Name: 'team/app', Action: 'push' },
    ]);
  });

  test('wrong password, unknown user, ignored entries and malformed Authorization headers: 401, server alive', async () => {
    const bad = [
      basic('alice', 'wrong'),
      basic('alice', ''),
      basic('mallory', 'alice-secret'),
      basic('dave', 'password'), // {SHA} entry, ignored
      basic('erin', 'x'),
      basic('', ''),
      'Basic',
      'Basic ',
      'Basic !!!not-base64!!!',
      `Basic ${Buffer.from('alice-no-colon').toString('base64')}`,
      `Basic ${Buffer.from('carol:carol:with:colons').toString('base64').replace(/=+$/, '')}`, // unpadded, as Go refuses
      'Bearer abc.def.ghi',
      'Digest username="alice"',
      `basic${Buffer.from('alice:alice-secret').toString('base64')}`,
      'x'.repeat(8000),
    ];
    for (const authorization of bad) {
      const res = await request(server, 'GET', '/v2/', { headers: { Authorization: authorization } });
      assert.equal(res.status, 401, `Authorization: ${authorization.slice(0, 60)}`);
      assertError(res, 401, 'UNAUTHORIZED');
      assert.equal(res.headers['www-authenticate'], CHALLENGE, authorization.slice(0, 40));
    }
    const ok = await request(server, 'GET', '/v2/', { headers: { Authorization: basic('alice', 'alice-secret') } });
    assert.equal(ok.status, 200);
  });

  test('$2y$, $2a$ and $2b$ entries log in; the Basic scheme is case-insensitive; push and pull work', async () => {
    for (const [u, p] of [['alice', 'alice-secret'], ['bob', 'b-secret'], ['carol', 'carol:with:colons']]) {
      const res = await request(server, 'GET', '/v2/', { headers: { Authorization: basic(u!, p!) } });
      assert.equal(res.status, 200, `${u}: ${res.text}`);
    }
    const lower = await request(server, 'GET', '/v2/', { headers: { Authorization: basic('bob', 'b-secret').replace('Basic', 'bAsIc') } });
    assert.equal(lower.status, 200);
    const auth = { Authorization: basic('alice', 'alice-secret') };
    const img = await pushAs(server, auth, 'team/app', 'v1');
    const got = await request(server, 'GET', `/v2/team/app/manifests/v1`, { headers: { ...auth, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(got.status, 200);
    assert.equal(got.headers['docker-content-digest'], img.digest);
    const cat = await request(server, 'GET', '/v2/_catalog', { headers: auth });
    assert.deepEqual(cat.json(), { repositories: ['team/app'] });
  });

  test('verified logins are cached: repeated requests do not pay bcrypt each time', async () => {
    fs.appendFileSync(file, `slow:${bcrypt.hashSync('slow-secret', 10)}\n`);
    const auth = { Authorization: basic('slow', 'slow-secret') };
    await waitFor(async () => (await request(server, 'GET', '/v2/', { headers: auth })).status === 200, 'reloaded user "slow"');
    const t0 = Date.now();
    const one = await request(server, 'GET', '/v2/', { headers: { Authorization: basic('slow', 'wrong') } });
    const bcryptMs = Date.now() - t0;
    assert.equal(one.status, 401);
    const t1 = Date.now();
    const results = await Promise.all(Array.from({ length: 40 }, () => request(server, 'GET', '/v2/', { headers: auth })));
    const cachedMs = Date.now() - t1;
    assert.ok(results.every((r) => r.status === 200));
    assert.ok(cachedMs < bcryptMs * 10, `40 cached logins took ${cachedMs} ms; one bcrypt check takes ${bcryptMs} ms`);
  });

  test('the file is re-read when it changes: users added, changed and removed without a restart', async () => {
    await upsertEntry(file, 'frank', hash('frank-1'));
    await waitFor(async () => (await request(server, 'GET', '/v2/', { headers: { Authorization: basic('frank', 'frank-1') } })).status === 200, 'frank added');
    await upsertEntry(file, 'frank', hash('frank-2'));
    await waitFor(async () => (await request(server, 'GET', '/v2/', { headers: { Authorization: basic('frank', 'frank-1') } })).status === 401, 'old password refused');
    assert.equal((await request(server, 'GET', '/v2/', { headers: { Authorization: basic('frank', 'frank-2') } })).status, 200);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').split('\n').filter((l) => !l.startsWith('frank:')).join('\n'));
    await waitFor(async () => (await request(server, 'GET', '/v2/', { headers: { Authorization: basic('frank', 'frank-2') } })).status === 401, 'frank removed (cached login dropped)');
    assert.match(logs.text(), /htpasswd file reloaded/);
  });

  test('logs name the refusal and the user, never a password', async () => {
    const text = logs.text();
    assert.match(text, /"reason":"authentication failed for user \\"mallory\\""/);
    assert.match(text, /"msg":"access refused"/);
    for (const secret of ['alice-secret', 'b-secret', 'carol:with:colons', 'frank-1', 'frank-2', 'slow-secret', 'wrong']) {
      assert.ok(!text.includes(secret), `a password (${secret}) reached the log`);
    }
    assert.ok(!text.includes(Buffer.from('alice:alice-secret').toString('base64').slice(0, 16)), 'an Authorization header reached the log');
  });
});

describe('auth.htpasswd with a missing file', () => {
  test('creates it with user docker and a random password, logged once; that login works', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-htpasswd-'));
    const file = path.join(dir, 'sub', 'htpasswd');
    const logs = captureLog('info');
    const server = await startAuthServer({ htpasswd: { realm: 'r', path: file } }, logs.log);
    try {
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      const provisioned = logs.lines().map((l) => JSON.parse(l)).filter((l) => l.msg === 'htpasswd is missing, provisioning with default user');
      assert.equal(provisioned.length, 1);
      assert.equal(provisioned[0].user, 'docker');
      assert.match(provisioned[0].password, /^[A-Za-z0-9_-]{43}$/);
      assert.match(fs.readFileSync(file, 'utf8'), /^docker:\$2[aby]\$10\$/);
      const res = await request(server, 'GET', '/v2/', { headers: { Authorization: basic('docker', provisioned[0].password) } });
      assert.equal(res.status, 200);
    } finally {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function waitFor(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
