/**
 * The swift driver's Keystone v2.0 and v3 authentication, against a fake Keystone written from the
 * Identity API references (test/storage/keystone-fake.ts: it checks what it is sent and hands out
 * real RGW tokens with a catalog in which one endpoint is RGW's Swift API), and renewal of expired
 * tokens on 401 for whole requests and for streamed segment uploads.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SwiftDriver } from '../../src/storage/swift.js';
import { startFakeKeystone, type FakeKeystone, type Identity } from './keystone-fake.js';
import { startRgwSwift, type RgwSwift } from './rgw-swift.js';

const MiB = 1024 * 1024;

const IDENTITY: Identity = {
  user: 'registry',
  password: 'registry-password',
  apiKey: 'a'.repeat(40),
  userDomain: { id: 'ud-7', name: 'Users' },
  project: { id: 'p-42', name: 'images', domain: { id: 'pd-9', name: 'Projects' } },
  trustId: 'trust-1',
};

describe('swift driver: Keystone v2.0 and v3 (fake Keystone, real RGW tokens)', () => {
  let rgw: RgwSwift;
  let keystone: FakeKeystone;
  let container: string;

  before(async () => {
    rgw = await startRgwSwift();
    keystone = await startFakeKeystone(rgw, IDENTITY);
    container = rgw.containerName('keystone');
  });

  after(async () => {
    await keystone?.close();
    if (container) await rgw.removeContainer(container);
  });

  /** Connect with these options, write and read one file, and return the auth requests made. */
  async function roundTrip(options: Record<string, unknown>): Promise<Array<{ path: string; body: any; status: number }>> {
    const from = keystone.requests.length;
    const hits = keystone.wrongEndpointHits.length;
    const driver = await SwiftDriver.connected({ username: IDENTITY.user, password: IDENTITY.password, container, chunksize: MiB, ...options });
    const content = randomBytes(1000);
    await driver.putContent('/k/file', content);
    assert.deepEqual(await driver.getContent('/k/file'), content);
    await driver.delete('/k');
    assert.deepEqual(keystone.wrongEndpointHits.slice(hits), [], 'no request went to another endpoint than the one asked for');
    return keystone.requests.slice(from);
  }

  it('v2.0: password credentials scoped by tenant name; the public endpoint of the first region by default', async () => {
    keystone.serveAt('RegionOne', 'public');
    const reqs = await roundTrip({ authurl: `${keystone.url}/v2.0`, tenant: IDENTITY.project.name });
    assert.deepEqual(reqs.map((r) => [r.path, r.status]), [['/v2.0/tokens', 200]]);
    assert.deepEqual(reqs[0].body, { auth: { passwordCredentials: { username: 'registry', password: 'registry-password' }, tenantName: 'images' } });
  });

  it('v2.0: tenantid, region and endpointtype choose the catalog entry', async () => {
    keystone.serveAt('RegionTwo', 'internal');
    const reqs = await roundTrip({ authurl: `${keystone.url}/v2.0/`, tenantid: IDENTITY.project.id, region: 'RegionTwo', endpointtype: 'internal' });
    assert.equal(reqs[0].body.auth.tenantId, 'p-42');
    keystone.serveAt('RegionTwo', 'admin');
    await roundTrip({ authurl: `${keystone.url}/v2.0`, tenantid: IDENTITY.project.id, region: 'RegionTwo', endpointtype: 'admin' });
  });

  it('v2.0: a 32+ character password is tried as a Rackspace API key first, then as a password', async () => {
    keystone.serveAt('RegionOne', 'public');
    const asKey = await roundTrip({ authurl: `${keystone.url}/v2.0`, tenant: 'images', password: IDENTITY.apiKey });
    assert.deepEqual(asKey.map((r) => r.status), [200]);
    assert.deepEqual(asKey[0].body.auth['RAX-KSKEY:apiKeyCredentials'], { username: 'registry', apiKey: IDENTITY.apiKey });
    // A long real password: the API-key form is refused, then the password form works.
    const long = { ...IDENTITY, password: 'p'.repeat(36) };
    const other = await startFakeKeystone(rgw, long);
    try {
      const driver = await SwiftDriver.connected({ authurl: `${other.url}/v2.0`, username: long.user, password: long.password, tenant: 'images', container });
      await driver.stat('/');
      assert.deepEqual(other.requests.map((r) => [Object.keys(r.body.auth).sort().join(','), r.status]), [
        ['RAX-KSKEY:apiKeyCredentials,tenantName', 401],
        ['passwordCredentials,tenantName', 200],
      ]);
    } finally {
      await other.close();
    }
  });

  it('v3: a user in a domain (by name or id), a project by name in tenantdomain (or tenantdomainid, domain, domainid, Default)', async () => {
    keystone.serveAt('RegionOne', 'public');
    const v3 = `${keystone.url}/v3`;
    const byName = await roundTrip({ authurl: v3, domain: 'Users', tenant: 'images', tenantdomain: 'Projects' });
    assert.deepEqual(byName.map((r) => [r.path, r.status]), [['/v3/auth/tokens', 201]]);
    assert.deepEqual(byName[0].body, {
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'registry', password: 'registry-password', domain: { name: 'Users' } } } },
        scope: { project: { name: 'images', domain: { name: 'Projects' } } },
      },
    });
    const byIds = await roundTrip({ authurl: v3, domainid: 'ud-7', tenant: 'images', tenantdomainid: 'pd-9' });
    assert.deepEqual(byIds[0].body.auth.identity.password.user.domain, { id: 'ud-7' });
    assert.deepEqual(byIds[0].body.auth.scope.project.domain, { id: 'pd-9' });
    // Without tenantdomain*, the project's domain is the user's (domain, then domainid), else "Default".
    const req = async (o: Record<string, unknown>) => {
      const from = keystone.requests.length;
      await SwiftDriver.connected({ authurl: v3, username: IDENTITY.user, password: IDENTITY.password, container, tenant: 'images', ...o }).catch(() => undefined);
      return keystone.requests[from].body.auth.scope.project.domain;
    };
    assert.deepEqual(await req({ domain: 'Users' }), { name: 'Users' });
    assert.deepEqual(await req({ domainid: 'ud-7' }), { id: 'ud-7' });
    assert.deepEqual(await req({}), { name: 'Default' });
  });

  it('v3: a project by id, or a trust; region and endpointtype pick the endpoint by its interface', async () => {
    keystone.serveAt('RegionTwo', 'internal');
    const byId = await roundTrip({ authurl: `${keystone.url}/v3`, domain: 'Users', tenantid: 'p-42', region: 'RegionTwo', endpointtype: 'internal' });
    assert.deepEqual(byId[0].body.auth.scope, { project: { id: 'p-42' } });
    keystone.serveAt('RegionOne', 'admin');
    const trust = await roundTrip({ authurl: `${keystone.url}/v3/`, domainid: 'ud-7', trustid: 'trust-1', tenant: 'ignored', endpointtype: 'admin', region: 'RegionOne' });
    assert.deepEqual(trust[0].body.auth.scope, { 'OS-TRUST:trust': { id: 'trust-1' } });
  });

  it('refusals and catalogs without the endpoint stop start-up with a message naming the keys', async () => {
    const base = { authurl: `${keystone.url}/v3`, username: IDENTITY.user, domain: 'Users', tenant: 'images', tenantdomain: 'Projects', container };
    await assert.rejects(SwiftDriver.connected({ ...base, password: 'nope' }), /storage\.swift: authentication at authurl http:\/\/127\.0\.0\.1:\d+\/v3 failed: 401 .*check username, password/);
    await assert.rejects(
      SwiftDriver.connected({ ...base, password: IDENTITY.password, region: 'RegionNine' }),
      /storage\.swift: the service catalog of authurl .* has no object-store endpoint for region "RegionNine" with endpointtype public/,
    );
    await assert.rejects(
      SwiftDriver.connected({ ...base, authurl: `${keystone.url}/v2.0`, password: IDENTITY.password, tenant: 'other' }),
      /authentication at authurl .*\/v2\.0 failed: 401/,
    );
  });

  it('an expired token (401) is renewed once and the request retried: whole requests and streamed segments alike', async () => {
    keystone.serveAt('RegionOne', 'public');
    const driver = await SwiftDriver.connected({ authurl: `${keystone.url}/v3`, username: IDENTITY.user, password: IDENTITY.password, domain: 'Users', tenantid: 'p-42', container, chunksize: MiB });
    const before = keystone.requests.length;
    // Force a renewal with a token RGW refuses: the next request meets 401, renews, succeeds.
    keystone.expireNextTokens(1);
    await driver.conn.renew(await driver.conn.current());
    await driver.putContent('/exp/a', Buffer.from('a'));
    assert.equal(keystone.requests.length - before, 2, 'one auth gave the expired token, one after the 401');
    // The same in the middle of a streamed upload: the segment PUT (the first request with the
    // expired token) is refused before its body, and sent again with a new token.
    const content = randomBytes(2 * MiB + 7);
    const w = await driver.writer('/exp/data', false);
    await w.write(content.subarray(0, MiB + 5));
    const midway = keystone.requests.length;
    keystone.expireNextTokens(1);
    await driver.conn.renew(await driver.conn.current());
    await w.write(content.subarray(MiB + 5));
    assert.equal(keystone.requests.length - midway, 2, 'the segment upload met the 401 and renewed the token');
    await w.commit();
    assert.ok((await driver.getContent('/exp/data')).equals(content));
    // Two expired tokens in a row: the request fails rather than looping.
    keystone.expireNextTokens(2);
    await driver.conn.renew(await driver.conn.current());
    await assert.rejects(driver.putContent('/exp/b', Buffer.from('b')), /answered 401/);
    await driver.delete('/exp');
  });
});
