// How the pull-through cache authenticates to its upstream: WWW-Authenticate parsing; the Bearer token
// flow against Wharf with token auth and a real token issuer (credentials or anonymous, tokens kept
// per scope, a revoked token replaced after one 401); basic auth against Wharf with htpasswd; a
// Docker credential helper (`exec`) and its `lifetime`; refusals reported with the keys to check.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { parseChallenges } from '../../src/proxy/auth.js';
import { basic, captureLog, makePki, pushAs, signToken, startTokenIssuer, type Pki, type TokenIssuer } from '../server/auth-fixtures.js';
import { ACCEPT_ALL, assertError, request, sha256, type TestServer } from '../server/helpers.js';
import { removeDir, startCache, startFakeUpstream, startUpstream, upstream, type CacheServer, type FakeUpstream } from './helpers.js';

const manifest = (server: { port: number }, name: string, ref: string) => request(server, 'GET', `/v2/${name}/manifests/${ref}`, { headers: { Accept: ACCEPT_ALL } });
const blob = (server: { port: number }, name: string, digest: string) => request(server, 'GET', `/v2/${name}/blobs/${digest}`);

describe('WWW-Authenticate', () => {
  test('challenges are parsed as Docker clients read them', () => {
    assert.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } },
    ]);
    assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    assert.deepEqual(parseChallenges(['Basic realm=x, Bearer realm="a\\"b", service=s']), [
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'a"b', service: 's' } },
    ]);
    assert.deepEqual(parseChallenges(undefined), []);
    assert.deepEqual(parseChallenges('  ,, '), []);
  });
});

describe('Bearer tokens from a token service (Wharf with auth.token upstream)', { timeout: 120_000 }, () => {
  let pki: Pki;
  let issuer: TokenIssuer;
  let origin: TestServer;
  const caches: CacheServer[] = [];
  let pushed: { digest: string; layer: string };
  let publicImage: { digest: string; layer: string };

  before(async () => {
    pki = makePki();
    issuer = await startTokenIssuer({
      pki,
      users: { alice: 'alice-pw' },
      // alice pulls anything; anonymous pulls public/* only.
      grant: (user, wanted) => (user === 'alice' || wanted.name.startsWith('public/') ? wanted.actions.filter((a) => a === 'pull') : []),
    });
    origin = await startUpstream({ auth: { token: { realm: issuer.realm, service: 'test-registry', issuer: 'test-issuer', rootcertbundle: pki.bundle } } });
    const pusher = async (name: string) =>
      `Bearer ${await signToken({ key: pki.leafKey, header: { x5c: pki.x5c }, access: [{ type: 'repository', name, actions: ['pull', 'push'] }] })}`;
    pushed = await pushAs(origin, { Authorization: await pusher('private/app') }, 'private/app', 'v1');
    publicImage = await pushAs(origin, { Authorization: await pusher('public/app') }, 'public/app', 'v1');
  });
  after(async () => {
    for (const c of caches) {
      await c.close();
      removeDir(c.dir);
    }
    await origin?.close();
    await issuer?.close();
    if (pki) fs.rmSync(pki.dir, { recursive: true, force: true });
  });
  const cacheWith = async (opts: { username?: string; password?: string }) => {
    const c = await startCache([upstream(origin.url, opts)]);
    caches.push(c);
    return c;
  };

  test('with credentials: one token per scope, asked with them, reused for every request', async () => {
    const cache = await cacheWith({ username: 'alice', password: 'alice-pw' });
    const before = issuer.requests.length;
    const res = await manifest(cache, 'private/app', 'v1');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['docker-content-digest'], pushed.digest);
    assert.equal((await blob(cache, 'private/app', pushed.layer)).status, 200);
    assert.equal((await manifest(cache, 'private/app', 'v1')).status, 200);
    const asked = issuer.requests.slice(before);
    assert.deepEqual(asked, [{ user: 'alice', scopes: ['repository:private/app:pull'] }], 'one token, for this repository, with the credentials');
  });

  test('anonymous: public repositories pull, private ones are refused with a message naming the keys', async () => {
    const cache = await cacheWith({});
    assert.equal((await manifest(cache, 'public/app', 'v1')).status, 200);
    assert.equal((await blob(cache, 'public/app', publicImage.layer)).status, 200);
    assert.ok(issuer.requests.some((r) => r.user === '' && r.scopes[0] === 'repository:public/app:pull'));
    const refused = await blob(cache, 'private/app', pushed.layer);
    assertError(refused, 403, 'DENIED');
    assert.match(refused.json().errors[0].message, /refused access \(HTTP 401\); check proxy\.username and password/);
    assertError(await manifest(cache, 'private/app', 'v1'), 404, 'MANIFEST_UNKNOWN'); // a tag falls back to the (empty) cache
  });

  test('wrong credentials: the token service refuses them, the client is told which keys', async () => {
    const cache = await cacheWith({ username: 'alice', password: 'wrong' });
    const res = await blob(cache, 'private/app', pushed.layer);
    assertError(res, 502, 'UNKNOWN');
    assert.match(res.json().errors[0].message, /refused the credentials in proxy\.username and password \(or exec\) \(HTTP 401\)/);
  });
});

describe('a revoked token is replaced after one 401', { timeout: 60_000 }, () => {
  let tokens: FakeUpstream;
  let registry: FakeUpstream;
  let cache: CacheServer;
  let valid = 'tok-1';
  let issued = 0;
  const content = Buffer.from('blob behind a token');
  const digest = sha256(content);

  before(async () => {
    tokens = await startFakeUpstream((_req, res) => {
      issued++;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token: `tok-${issued}`, expires_in: 3600 }));
    });
    registry = await startFakeUpstream((req, res) => {
      if (req.headers.authorization !== `Bearer ${valid}`) {
        res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${tokens.url}/token",service="fake"`, 'Content-Type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      res.writeHead(req.url === `/v2/team/app/blobs/${digest}` ? 200 : 404, { 'Content-Length': content.length });
      res.end(content);
    });
    cache = await startCache([upstream(registry.url)]);
  });
  after(async () => {
    await cache?.close();
    await registry?.close();
    await tokens?.close();
    removeDir(cache?.dir);
  });

  test('the challenge is learnt, the token kept, and fetched again once the upstream stops accepting it', async () => {
    const other = Buffer.from('another blob');
    assert.equal((await blob(cache, 'team/app', digest)).status, 200);
    assert.equal(issued, 1);
    valid = 'tok-2'; // the upstream revokes tok-1
    const res = await request(cache, 'HEAD', `/v2/team/app/blobs/${sha256(other)}`);
    assert.equal(res.status, 404, 'answered after a fresh token');
    assert.equal(issued, 2, 'one new token');
    const withTok2 = registry.requests.length;
    await request(cache, 'HEAD', `/v2/team/app/blobs/${sha256(other)}`);
    assert.equal(registry.requests.length, withTok2 + 1, 'the new token is used straight away');
  });
});

describe('basic auth (Wharf with auth.htpasswd upstream) and credential helpers', { timeout: 120_000 }, () => {
  let dir: string;
  let origin: TestServer;
  let pushed: { digest: string; layer: string };
  const caches: CacheServer[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-proxy-basic-'));
    const file = path.join(dir, 'htpasswd');
    fs.writeFileSync(file, `bob:${bcrypt.hashSync('bob-pw', 4)}\n`);
    origin = await startUpstream({ auth: { htpasswd: { realm: 'upstream', path: file } } });
    pushed = await pushAs(origin, { Authorization: basic('bob', 'bob-pw') }, 'team/app', 'v1');
  });
  after(async () => {
    for (const c of caches) {
      await c.close();
      removeDir(c.dir);
    }
    await origin?.close();
    removeDir(dir);
  });
  const cacheWith = async (opts: Parameters<typeof upstream>[1], log?: ReturnType<typeof captureLog>) => {
    const c = await startCache([upstream(origin.url, opts)], { log: log?.log });
    caches.push(c);
    return c;
  };
  /** A credential helper that counts its runs and keeps what it read on stdin. */
  const helper = (name: string, output: string, code = 0) => {
    const script = path.join(dir, name);
    fs.writeFileSync(script, `#!/bin/sh\ncat >> "${script}.stdin"; echo >> "${script}.stdin"\necho run >> "${script}.runs"\nprintf '%s' '${output}'\nexit ${code}\n`, { mode: 0o755 });
    return { script, runs: () => (fs.existsSync(`${script}.runs`) ? fs.readFileSync(`${script}.runs`, 'utf8').trim().split('\n').length : 0), stdin: () => fs.readFileSync(`${script}.stdin`, 'utf8') };
  };

  test('username and password go with every request; wrong ones are refused naming the keys', async () => {
    const cache = await cacheWith({ username: 'bob', password: 'bob-pw' });
    assert.equal((await manifest(cache, 'team/app', 'v1')).headers['docker-content-digest'], pushed.digest);
    assert.equal((await blob(cache, 'team/app', pushed.layer)).status, 200);
    const wrong = await cacheWith({ username: 'bob', password: 'nope', key: 'proxy.upstreams[3]', prefix: 'x' });
    const res = await blob(wrong, 'x/team/app', pushed.layer);
    assertError(res, 403, 'DENIED');
    assert.match(res.json().errors[0].message, /check proxy\.upstreams\[3\]\.username and password/);
  });

  test('exec: the helper gets the host on stdin; without lifetime it runs once, with 0 before every use', async () => {
    const once = helper('once.sh', '{"ServerURL":"x","Username":"bob","Secret":"bob-pw"}');
    const cache = await cacheWith({ exec: { command: once.script } });
    for (let i = 0; i < 3; i++) assert.equal((await blob(cache, 'team/app', pushed.layer)).status, 200);
    assert.equal((await manifest(cache, 'team/app', 'v1')).status, 200);
    assert.equal(once.runs(), 1);
    assert.equal(once.stdin().trim(), new URL(origin.url).host);

    const every = helper('every.sh', '{"Username":"bob","Secret":"bob-pw"}');
    const cache2 = await cacheWith({ exec: { command: every.script, lifetime: 0 } });
    // An uncached HEAD asks the upstream every time.
    for (let i = 0; i < 3; i++) assert.equal((await request(cache2, 'HEAD', `/v2/team/app/blobs/${pushed.layer}`)).status, 200);
    assert.ok(every.runs() >= 3, `ran ${every.runs()} times`);
  });

  test('exec: a helper that fails leaves the cache anonymous and is logged with its key', async () => {
    const broken = helper('broken.sh', 'oops', 3);
    const logs = captureLog('info');
    const cache = await cacheWith({ exec: { command: broken.script } }, logs);
    assertError(await blob(cache, 'team/app', pushed.layer), 403, 'DENIED');
    assert.match(logs.text(), /proxy\.exec\.command: the credential helper failed/);
    assert.match(logs.text(), /exited with 3/);
  });
});
