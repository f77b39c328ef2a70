// auth.token in-process: challenges as the Docker token spec, and every bad token — missing, malformed,
// expired, not yet valid, another service or issuer, tampered, alg none, HS256 key confusion, an untrusted
// CA or key id, too little scope (push with a pull token, catalog without registry:catalog:*) — answered
// 401 UNAUTHORIZED with the right challenge, logged without the token, the server alive. Also: the ways a
// signing key is found (x5c chain, libtrust kid, JWK thumbprint, JWKS), cross-repository mounts, autoredirect.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { libtrustKeyID } from '../../src/server/auth/token.js';
import { captureLog, makePki, pushAs, signToken, startAuthServer, type CapturedLog, type Pki, type TokenSpec } from './auth-fixtures.js';
import { ACCEPT_ALL, assertError, request, type Res, type TestServer } from './helpers.js';

const SERVICE = 'test-registry';
const ISSUER = 'test-issuer';

describe('auth.token', { timeout: 60_000 }, () => {
  let pki: Pki;
  let server: TestServer;
  let logs: CapturedLog;
  let realm: string;
  let jwksKey: unknown;
  const tokens: string[] = [];

  const tok = async (spec: Partial<TokenSpec> & { access?: TokenSpec['access'] }) => {
    const t = await signToken({ key: pki.leafKey, header: { x5c: pki.x5c }, iss: ISSUER, aud: SERVICE, ...spec });
    tokens.push(t);
    return t;
  };
  const pull = (name: string) => [{ type: 'repository', name, actions: ['pull'] }];
  const get = (p: string, token?: string, method = 'GET') =>
    request(server, method, p, { headers: { Accept: ACCEPT_ALL, ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }) } });
  const challenge = (scope?: string, error?: string) =>
    `Bearer realm="${realm}",service="${SERVICE}"` + (scope ? `,scope="${scope}"` : '') + (error ? `,error="${error}"` : '');
  const refused = (res: Res, scope: string | undefined, error: string | undefined, what: string) => {
    assert.equal(res.status, 401, `${what}: ${res.status} ${res.text}`);
    assertError(res, 401, 'UNAUTHORIZED');
    assert.equal(res.headers['www-authenticate'], challenge(scope, error), what);
  };

  before(async () => {
    pki = makePki();
    realm = 'https://auth.example.com/token';
    const pair = await generateKeyPair('ES256', { extractable: true });
    jwksKey = pair.privateKey;
    const jwks = path.join(pki.dir, 'jwks.json');
    fs.writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'jwks-key-1', use: 'sig' }] }));
    logs = captureLog();
    server = await startAuthServer({ token: { realm, service: SERVICE, issuer: ISSUER, rootcertbundle: pki.bundle, jwks } }, logs.log);
  });
  after(async () => {
    await server?.close();
    if (pki) fs.rmSync(pki.dir, { recursive: true, force: true });
  });

  test('no token: 401 with the spec challenge and the scope each route needs', async () => {
    refused(await get('/v2/'), undefined, undefined, 'base route: authentication only');
    refused(await get('/v2/team/app/manifests/v1'), 'repository:team/app:pull', undefined, 'GET');
    refused(await get('/v2/team/app/manifests/v1', undefined, 'PUT'), 'repository:team/app:pull,push', undefined, 'PUT');
    refused(await get('/v2/team/app/blobs/uploads/', undefined, 'POST'), 'repository:team/app:pull,push', undefined, 'POST');
    refused(await get('/v2/team/app/manifests/v1', undefined, 'DELETE'), 'repository:team/app:delete', undefined, 'DELETE');
    refused(await get('/v2/_catalog'), 'registry:catalog:*', undefined, 'catalog');
    refused(
      await get(`/v2/team/app/blobs/uploads/?mount=sha256:${'a'.repeat(64)}&from=other/repo`, undefined, 'POST'),
      'repository:team/app:pull,push repository:other/repo:pull',
      undefined,
      'mount',
    );
    // Basic credentials are not a token: no error parameter, as Distribution's ErrTokenRequired.
    const basicRes = await request(server, 'GET', '/v2/', { headers: { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
    refused(basicRes, undefined, undefined, 'Basic credentials');
  });

  test('a valid token: x5c chain to the bundle (through an intermediate) grants what its access claim says', async () => {
    const t = await tok({ access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }] });
    assert.equal((await get('/v2/', t)).status, 200);
    const pushed = await pushAs(server, { Authorization: `Bearer ${t}` }, 'team/app', 'v1');
    const res = await get('/v2/team/app/manifests/v1', t);
    assert.equal(res.status, 200);
    assert.equal(res.headers['docker-content-digest'], pushed.digest);
    // lower-case scheme
    const lower = await request(server, 'GET', '/v2/team/app/manifests/v1', { headers: { Authorization: `bearer ${t}`, Accept: ACCEPT_ALL } });
    assert.equal(lower.status, 200);
  });

  test('malformed Authorization headers and tokens: 401 error="invalid_token" (or no token at all)', async () => {
    refused(await request(server, 'GET', '/v2/', { headers: { Authorization: 'Bearer' } }), undefined, undefined, 'Bearer alone');
    refused(await request(server, 'GET', '/v2/', { headers: { Authorization: 'Bearer ' } }), undefined, undefined, 'Bearer and a space');
    for (const raw of ['abc', 'a.b.c', 'a.b', '....', `${Buffer.from('{"alg":"ES256"}').toString('base64url')}.e30.`, 'x'.repeat(6000), '%%%.###.!!!']) {
      refused(await get('/v2/x/manifests/y', raw), 'repository:x:pull', 'invalid_token', `token ${raw.slice(0, 30)}`);
    }
  });

  test('expired, not yet valid, without exp, for another service or issuer: invalid_token', async () => {
    const access = pull('team/app');
    const cases: [string, Partial<TokenSpec>][] = [
      ['expired 2 minutes ago', { exp: -120 }],
      ['not before 2 minutes from now', { nbf: 120 }],
      ['no exp', { noExp: true }],
      ['another service', { aud: 'other-registry' }],
      ['another issuer', { iss: 'evil-issuer' }],
    ];
    for (const [what, spec] of cases) {
      refused(await get('/v2/team/app/manifests/v1', await tok({ access, ...spec })), 'repository:team/app:pull', 'invalid_token', what);
    }
    // within the 60 s leeway, and an audience list that includes the service
    assert.equal((await get('/v2/team/app/manifests/v1', await tok({ access, exp: -30 }))).status, 200, 'expired 30 s ago: within leeway');
    assert.equal((await get('/v2/team/app/manifests/v1', await tok({ access, aud: ['x', SERVICE] }))).status, 200, 'aud list');
  });

  test('tampered signature or payload, alg none, HS256 with the public key, untrusted CA or key id: invalid_token', async () => {
    const scope = 'repository:team/app:pull';
    const good = await tok({ access: pull('team/app') });
    const [h, p, s] = good.split('.') as [string, string, string];
    const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
    refused(await get('/v2/team/app/manifests/v1', `${h}.${p}.${flipped}`), scope, 'invalid_token', 'tampered signature');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    payload.access = [{ type: 'repository', name: 'team/app', actions: ['*'] }];
    const forged = Buffer.from(JSON.stringify(payload)).toString('base64url');
    refused(await get('/v2/team/app/manifests/v1', `${h}.${forged}.${s}`), scope, 'invalid_token', 'tampered payload');
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT', x5c: pki.x5c })).toString('base64url');
    refused(await get('/v2/team/app/manifests/v1', `${none}.${p}.`), scope, 'invalid_token', 'alg none');
    refused(await get('/v2/team/app/manifests/v1', `${none}.${p}`), scope, 'invalid_token', 'alg none, two parts');
    // Key confusion: HMAC keyed with the bundle certificate's public key, named by its kid.
    const kid = libtrustKeyID(pki.rootCert.publicKey);
    for (const secret of [pki.rootCert.publicKey.export({ type: 'spki', format: 'pem' }), pki.rootCert.toString()]) {
      const hs = await new SignJWT({ access: payload.access })
        .setProtectedHeader({ alg: 'HS256', kid })
        .setIssuer(ISSUER).setAudience(SERVICE).setExpirationTime('5m')
        .sign(Buffer.from(secret));
      refused(await get('/v2/team/app/manifests/v1', hs), scope, 'invalid_token', 'HS256 keyed with the public key');
    }
    const rogue = await signToken({ key: pki.rogueKey, header: { x5c: pki.rogueX5c }, iss: ISSUER, aud: SERVICE, access: pull('team/app') });
    refused(await get('/v2/team/app/manifests/v1', rogue), scope, 'invalid_token', 'certificate of a CA not in the bundle');
    // a leaf signed by the intermediate, without the intermediate in x5c: no chain to the root
    const shortChain = await signToken({ key: pki.leafKey, header: { x5c: [pki.x5c[0]] }, iss: ISSUER, aud: SERVICE, access: pull('team/app') });
    refused(await get('/v2/team/app/manifests/v1', shortChain), scope, 'invalid_token', 'x5c without its intermediate');
    // right chain, wrong signing key
    const wrongKey = await signToken({ key: pki.rogueKey, header: { x5c: pki.x5c }, iss: ISSUER, aud: SERVICE, access: pull('team/app') });
    refused(await get('/v2/team/app/manifests/v1', wrongKey), scope, 'invalid_token', 'x5c of the trusted leaf, signed by another key');
    const unknownKid = await signToken({ key: pki.rogueKey, header: { kid: 'ABCD:EFGH' }, iss: ISSUER, aud: SERVICE, access: pull('team/app') });
    refused(await get('/v2/team/app/manifests/v1', unknownKid), scope, 'invalid_token', 'unknown kid');
    const noKey = await signToken({ key: pki.leafKey, header: {}, iss: ISSUER, aud: SERVICE, access: pull('team/app') });
    refused(await get('/v2/team/app/manifests/v1', noKey), scope, 'invalid_token', 'no x5c, jwk or kid');
  });

  test('a kid naming a bundle key (libtrust form or JWK thumbprint) or a JWKS key is trusted', async () => {
    const access = pull('team/app');
    const libtrust = libtrustKeyID(pki.rootCert.publicKey);
    assert.match(libtrust, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    const thumb = await calculateJwkThumbprint(await exportJWK(pki.rootCert.publicKey));
    for (const [what, header, key] of [
      ['libtrust kid', { kid: libtrust }, pki.rootKey],
      ['JWK thumbprint kid', { kid: thumb }, pki.rootKey],
      ['jwk header of a bundle key', { jwk: await exportJWK(pki.rootCert.publicKey) }, pki.rootKey],
      ['jwk header with the x5c chain', { jwk: { ...(await exportJWK(pki.leafKey)), d: undefined, x5c: pki.x5c } }, pki.leafKey],
      ['JWKS kid', { kid: 'jwks-key-1' }, jwksKey],
    ] as const) {
      const t = await signToken({ key: key as never, header: header as Record<string, unknown>, iss: ISSUER, aud: SERVICE, access });
      const res = await get('/v2/team/app/manifests/v1', t);
      assert.equal(res.status, 200, `${what}: ${res.text} ${res.headers['www-authenticate']}`);
    }
  });

  test('too little scope: push with a pull token, delete without delete, catalog without registry:catalog:* — insufficient_scope', async () => {
    const pullOnly = await tok({ access: pull('team/app') });
    refused(await get('/v2/team/app/blobs/uploads/', pullOnly, 'POST'), 'repository:team/app:pull,push', 'insufficient_scope', 'push with pull');
    const put = await request(server, 'PUT', '/v2/team/app/manifests/v2', { headers: { Authorization: `Bearer ${pullOnly}`, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: '{}' });
    refused(put, 'repository:team/app:pull,push', 'insufficient_scope', 'manifest PUT with pull');
    refused(await get('/v2/team/app/manifests/v1', pullOnly, 'DELETE'), 'repository:team/app:delete', 'insufficient_scope', 'delete with pull');
    refused(await get('/v2/other/repo/manifests/v1', pullOnly), 'repository:other/repo:pull', 'insufficient_scope', 'another repository');
    refused(await get('/v2/_catalog', pullOnly), 'registry:catalog:*', 'insufficient_scope', 'catalog');
    const catalog = await tok({ access: [{ type: 'registry', name: 'catalog', actions: ['*'] }] });
    const cat = await get('/v2/_catalog', catalog);
    assert.equal(cat.status, 200);
    assert.ok(cat.json().repositories.includes('team/app'));
    const star = await tok({ access: [{ type: 'repository', name: 'team/app', actions: ['*'] }] });
    assert.equal((await get('/v2/team/app/blobs/uploads/', star, 'POST')).status, 202, '* grants push');
    // a repository grant does not reach a name that merely starts the same
    refused(await get('/v2/team/app2/manifests/v1', star), 'repository:team/app2:pull', 'insufficient_scope', 'prefix name');
  });

  test('cross-repository mount: mounted with pull on from, a plain upload without it', async () => {
    const src = await tok({ access: [{ type: 'repository', name: 'src/repo', actions: ['pull', 'push'] }] });
    const pushed = await pushAs(server, { Authorization: `Bearer ${src}` }, 'src/repo', 'v1');
    const both = await tok({ access: [{ type: 'repository', name: 'dst/repo', actions: ['pull', 'push'] }, ...pull('src/repo')] });
    const mounted = await get(`/v2/dst/repo/blobs/uploads/?mount=${pushed.layer}&from=src/repo`, both, 'POST');
    assert.equal(mounted.status, 201, mounted.text);
    const targetOnly = await tok({ access: [{ type: 'repository', name: 'dst2/repo', actions: ['pull', 'push'] }] });
    const upload = await get(`/v2/dst2/repo/blobs/uploads/?mount=${pushed.layer}&from=src/repo`, targetOnly, 'POST');
    assert.equal(upload.status, 202, `no pull on from: plain upload, ${upload.text}`);
    assert.equal((await get(`/v2/dst2/repo/blobs/${pushed.layer}`, targetOnly, 'HEAD')).status, 404, 'not mounted');
  });

  test('refusals are logged with a reason and never with the token; the server stays up', async () => {
    const text = logs.text();
    assert.match(text, /invalid token: token expired/);
    assert.match(text, /insufficient scope/);
    assert.match(text, /signing algorithm \\"none\\" is not accepted/);
    for (const t of tokens) assert.ok(!text.includes(t.split('.')[2]!), 'a token signature reached the log');
    const ok = await get('/v2/', await tok({}));
    assert.equal(ok.status, 200);
  });
});

describe('auth.token configuration', () => {
  let pki: Pki;
  before(() => {
    pki = makePki();
  });
  after(() => fs.rmSync(pki.dir, { recursive: true, force: true }));

  test('signingalgorithms limits what is accepted; an unknown algorithm or no key stops start-up', async () => {
    const logs = captureLog();
    const server = await startAuthServer({ token: { realm: 'r', service: SERVICE, issuer: ISSUER, rootcertbundle: pki.bundle, signingalgorithms: ['RS256'] } }, logs.log);
    try {
      const t = await signToken({ key: pki.leafKey, header: { x5c: pki.x5c }, iss: ISSUER, aud: SERVICE });
      const res = await request(server, 'GET', '/v2/', { headers: { Authorization: `Bearer ${t}` } });
      assert.equal(res.status, 401);
      assert.match(String(res.headers['www-authenticate']), /error="invalid_token"/);
    } finally {
      await server.close();
    }
    await assert.rejects(
      startAuthServer({ token: { realm: 'r', service: 's', issuer: 'i', rootcertbundle: pki.bundle, signingalgorithms: ['HS1'] } }, logs.log),
      /unsupported signing algorithm "HS1"/,
    );
    const empty = path.join(pki.dir, 'empty.pem');
    fs.writeFileSync(empty, '');
    await assert.rejects(startAuthServer({ token: { realm: 'r', service: 's', issuer: 'i', rootcertbundle: empty } }, logs.log), /at least one token signing key/);
    await assert.rejects(startAuthServer({ token: { realm: 'r', service: 's', issuer: 'i', rootcertbundle: path.join(pki.dir, 'missing.pem') } }, logs.log), /ENOENT/);
  });

  test('autoredirect: the realm is derived from the request host (https unless X-Forwarded-Proto says otherwise)', async () => {
    const logs = captureLog();
    const server = await startAuthServer({ token: { realm: 'ignored', service: SERVICE, issuer: ISSUER, rootcertbundle: pki.bundle, autoredirect: true } }, logs.log);
    try {
      const res = await request(server, 'GET', '/v2/a/tags/list', { headers: { Host: 'registry.example.com:5000' } });
      assert.equal(res.headers['www-authenticate'], `Bearer realm="https://registry.example.com:5000/auth/token",service="${SERVICE}",scope="repository:a:pull"`);
      const fwd = await request(server, 'GET', '/v2/', { headers: { Host: 'r.example', 'X-Forwarded-Proto': 'http' } });
      assert.equal(fwd.headers['www-authenticate'], `Bearer realm="http://r.example/auth/token",service="${SERVICE}"`);
    } finally {
      await server.close();
    }
    const custom = await startAuthServer(
      { token: { realm: 'x', service: SERVICE, issuer: ISSUER, rootcertbundle: pki.bundle, autoredirect: true, autoredirectpath: '/token/here' } },
      logs.log,
    );
    try {
      const res = await request(custom, 'GET', '/v2/', { headers: { Host: 'h' } });
      assert.equal(res.headers['www-authenticate'], `Bearer realm="https://h/token/here",service="${SERVICE}"`);
    } finally {
      await custom.close();
    }
  });
});

