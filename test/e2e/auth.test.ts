// Authentication with real clients against Wharf started from a Distribution config file:
// - auth.htpasswd: the file made by `wharf htpasswd`; skopeo login / copy --dest-creds / inspect --creds,
//   podman login + push + pull; a user added while the server runs logs in without a restart; refusals.
// - auth.token: a test token issuer (jose, HTTP on 127.0.0.1) that skopeo and podman reach by following
//   the 401 challenge; per-user rights (bob may only pull); anonymous refused.
// - Distribution 2.8 (docker-registry) with the same token configuration: it accepts a token whose kid is
//   Wharf's libtrust key ID, and answers the same challenges as Wharf.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { libtrustKeyID } from '../../src/server/auth/token.js';
import { makePki, signToken, startTokenIssuer, type Pki, type TokenIssuer } from '../server/auth-fixtures.js';
import {
  ROOT,
  freePort,
  inspectDigest,
  liveChildren,
  makeTinyImage,
  podman,
  readOciImage,
  requireTools,
  run,
  runExpectFailure,
  skopeo,
  skopeoCopy,
  sleep,
  tempDir,
  type OciImage,
} from './harness.js';

interface Server {
  host: string;
  url: string;
  log(): string;
  stop(): Promise<void>;
}

/** Start Wharf (or docker-registry) on CONFIG's `auth` section; ready when GET /v2/ answers at all. */
async function startWith(kind: 'wharf' | 'reference', work: string, auth: string): Promise<Server> {
  const port = await freePort();
  const config = path.join(work, `${kind}-${port}.yml`);
  const data = path.join(work, `data-${port}`);
  fs.writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${data}\n  delete:\n    enabled: true\n` +
      `http:\n  addr: 127.0.0.1:${port}\n  secret: e2e-secret\n${auth}`,
  );
  const logPath = path.join(work, `${kind}-${port}.log`);
  const fd = fs.openSync(logPath, 'a');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('REGISTRY_') && k !== 'AWS_CA_BUNDLE') env[k] = v;
  const [cmd, args] = kind === 'wharf' ? [process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'serve', config]] : ['docker-registry', ['serve', config]];
  const child = spawn(cmd, args as string[], { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  liveChildren.add(child);
  let exited = false;
  const gone = new Promise<void>((resolve) => child.on('exit', () => ((exited = true), liveChildren.delete(child), resolve())));
  const log = () => fs.readFileSync(logPath, 'utf8');
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`${kind} exited during start-up:\n${log()}`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      break;
    } catch {
      if (i > 300) throw new Error(`${kind} did not answer within 30 s:\n${log()}`);
      await sleep(100);
    }
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    log,
    stop: async () => {
      if (!exited) child.kill('SIGTERM');
      await gone;
    },
  };
}

describe('auth with real clients', { timeout: 120_000 }, () => {
  let work: string;
  let img: OciImage;
  let pki: Pki;

  before(async () => {
    requireTools('skopeo', 'podman', 'umoci');
    work = tempDir('auth');
    img = await makeTinyImage(path.join(work, 'src'), 'v1', 1);
    pki = makePki();
  });
  after(() => {
    if (pki) fs.rmSync(pki.dir, { recursive: true, force: true });
  });

  test('htpasswd: wharf htpasswd, skopeo login/copy/inspect, podman login/push/pull, a user added live', async () => {
    const file = path.join(work, 'htpasswd');
    const wharfCli = (user: string, pass: string) => run(process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'htpasswd', file, user], { input: `${pass}\n` });
    await wharfCli('alice', 'alice-pw');
    const reg = await startWith('wharf', work, `auth:\n  htpasswd:\n    realm: e2e-realm\n    path: ${file}\n`);
    try {
      assert.match(reg.log(), /auth\.htpasswd without TLS/, 'start-up warns that basic auth runs without TLS');
      const ref = `docker://${reg.host}/team/app:v1`;
      const anon = await runExpectFailure('skopeo', ['--insecure-policy', 'copy', '--retry-times', '0', '--dest-tls-verify=false', img.ref, ref]);
      assert.match(anon.stderr, /unauthorized|authentication required/i);
      const bad = await runExpectFailure('skopeo', ['login', '--tls-verify=false', '--authfile', path.join(work, 'bad.json'), '-u', 'alice', '--password-stdin', reg.host], { input: 'nope\n' });
      assert.match(bad.stderr, /unauthorized|invalid username\/password|authentication required/i);

      const authfile = path.join(work, 'skopeo-auth.json');
      await skopeo(['login', '--tls-verify=false', '--authfile', authfile, '-u', 'alice', '--password-stdin', reg.host], { input: 'alice-pw\n' });
      await skopeoCopy(img.ref, ref, ['--dest-authfile', authfile]);
      await skopeoCopy(img.ref, `docker://${reg.host}/team/creds:v1`, ['--dest-creds', 'alice:alice-pw']);
      assert.equal(await inspectDigest(`${reg.host}/team/creds:v1`, ['--creds', 'alice:alice-pw']), img.digest);
      const out = path.join(work, 'pulled-htpasswd');
      await skopeoCopy(ref, `oci:${out}:v1`, ['--src-creds', 'alice:alice-pw']);
      assert.equal(readOciImage(out, 'v1').digest, img.digest);

      // podman, with a user added while the server runs (no restart)
      await wharfCli('pat', 'pat-pw');
      const store = path.join(work, 'podman-htpasswd');
      const pAuth = path.join(work, 'podman-auth.json');
      let login;
      for (let i = 0; i < 30; i++) {
        login = await podman(store, ['login', '--tls-verify=false', '--authfile', pAuth, '-u', 'pat', '--password-stdin', reg.host], { input: 'pat-pw\n', allowFail: true });
        if (login.code === 0) break;
        await sleep(200);
      }
      assert.equal(login!.code, 0, `podman login as a user added live: ${login!.stderr}`);
      await podman(store, ['pull', '-q', '--tls-verify=false', '--authfile', pAuth, `${reg.host}/team/app:v1`]);
      const digestFile = path.join(work, 'podman-htpasswd.digest');
      await podman(store, ['push', '-q', '--tls-verify=false', '--authfile', pAuth, '--digestfile', digestFile, `${reg.host}/team/app:v1`, `docker://${reg.host}/pat/copy:v1`]);
      assert.equal(await inspectDigest(`${reg.host}/pat/copy:v1`, ['--creds', 'pat:pat-pw']), fs.readFileSync(digestFile, 'utf8').trim());
      assert.ok(!reg.log().includes('alice-pw') && !reg.log().includes('pat-pw'), 'a password reached the server log');
    } finally {
      await reg.stop();
    }
  });

  test('token: skopeo and podman follow the challenge to the issuer; rights per user; anonymous refused', async () => {
    const issuer = await startTokenIssuer({
      pki,
      users: { alice: 'alice-pw', bob: 'bob-pw' },
      grant: (user, wanted) => {
        if (user === 'alice') return wanted.actions;
        if (user === 'bob') return wanted.actions.filter((a) => a === 'pull');
        return [];
      },
    });
    const reg = await startWith(
      'wharf',
      work,
      `auth:\n  token:\n    realm: ${issuer.realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: ${pki.bundle}\n`,
    );
    try {
      const ref = `${reg.host}/team/tok:v1`;
      await skopeoCopy(img.ref, `docker://${ref}`, ['--dest-creds', 'alice:alice-pw']);
      assert.ok(issuer.requests.some((r) => r.user === 'alice' && r.scopes.join(' ').includes('repository:team/tok:')), 'skopeo asked the issuer');
      assert.equal(await inspectDigest(ref, ['--creds', 'bob:bob-pw']), img.digest, 'bob may pull');
      const bobPush = await runExpectFailure('skopeo', ['--insecure-policy', 'copy', '--retry-times', '0', '--dest-tls-verify=false', '--dest-creds', 'bob:bob-pw', img.ref, `docker://${reg.host}/team/bob:v1`]);
      assert.match(bobPush.stderr, /unauthorized|authentication required|denied/i);
      const anon = await runExpectFailure('skopeo', ['--insecure-policy', 'inspect', '--retry-times', '0', '--tls-verify=false', `docker://${ref}`]);
      assert.match(anon.stderr, /unauthorized|authentication required/i);

      const store = path.join(work, 'podman-token');
      const pAuth = path.join(work, 'podman-token-auth.json');
      await podman(store, ['login', '--tls-verify=false', '--authfile', pAuth, '-u', 'alice', '--password-stdin', reg.host], { input: 'alice-pw\n' });
      await podman(store, ['pull', '-q', '--tls-verify=false', '--authfile', pAuth, ref]);
      const digestFile = path.join(work, 'podman-token.digest');
      await podman(store, ['push', '-q', '--tls-verify=false', '--authfile', pAuth, '--digestfile', digestFile, ref, `docker://${reg.host}/alice/copy:v1`]);
      assert.equal(await inspectDigest(`${reg.host}/alice/copy:v1`, ['--creds', 'alice:alice-pw']), fs.readFileSync(digestFile, 'utf8').trim());
      const badLogin = await podman(store, ['login', '--tls-verify=false', '--authfile', pAuth, '-u', 'alice', '--password-stdin', reg.host], { input: 'wrong\n', allowFail: true });
      assert.notEqual(badLogin.code, 0, 'podman login with a wrong password must fail');
    } finally {
      await reg.stop();
      await issuer.close();
    }
  });

  test('Distribution 2.8 with the same token configuration: accepts a libtrust kid as Wharf does, same challenges', async () => {
    requireTools('docker-registry');
    const auth = `auth:\n  token:\n    realm: https://auth.example/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: ${pki.bundle}\n`;
    const [wharf, reference] = await Promise.all([startWith('wharf', work, auth), startWith('reference', work, auth)]);
    try {
      const kidToken = await signToken({
        key: pki.rootKey,
        header: { kid: libtrustKeyID(pki.rootCert.publicKey) },
        iss: 'test-issuer',
        aud: 'test-registry',
        access: [{ type: 'repository', name: 'a/b', actions: ['pull'] }],
      });
      const cases: [string, string, Record<string, string>][] = [
        ['GET', '/v2/', {}],
        ['GET', '/v2/a/b/tags/list', {}],
        ['POST', '/v2/a/b/blobs/uploads/', {}],
        ['DELETE', '/v2/a/b/manifests/sha256:' + 'a'.repeat(64), {}],
        ['GET', '/v2/_catalog', {}],
        ['GET', '/v2/a/b/tags/list', { Authorization: 'Bearer not.a.token' }],
        ['GET', '/v2/a/b/tags/list', { Authorization: `Bearer ${kidToken}` }],
        ['POST', '/v2/a/b/blobs/uploads/', { Authorization: `Bearer ${kidToken}` }],
        ['GET', '/v2/_catalog', { Authorization: `Bearer ${kidToken}` }],
      ];
      const norm = (h: string | null) => (h ?? '').replace(/scope="([^"]*)"/, (_m, s: string) => `scope="${s.split(' ').map((r) => { const i = r.lastIndexOf(':'); return `${r.slice(0, i)}:${r.slice(i + 1).split(',').sort().join(',')}`; }).sort().join(' ')}"`);
      for (const [method, p, headers] of cases) {
        const [w, r] = await Promise.all([wharf, reference].map((s) => fetch(`${s.url}${p}`, { method, headers })));
        const [wb, rb] = await Promise.all([w!.text(), r!.text()]);
        const what = `${method} ${p} ${headers.Authorization ? headers.Authorization.slice(0, 12) : ''}`;
        assert.equal(w!.status, r!.status, `${what}: status (wharf ${wb} / distribution ${rb})`);
        assert.equal(norm(w!.headers.get('www-authenticate')), norm(r!.headers.get('www-authenticate')), `${what}: challenge`);
        if (w!.status === 401) assert.deepEqual(JSON.parse(wb), JSON.parse(rb), `${what}: error body`);
      }
    } finally {
      await Promise.all([wharf.stop(), reference.stop()]);
    }
  });
});
