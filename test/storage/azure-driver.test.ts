/** The azure driver: key validation (no server) and, on Azurite, what the shared suite cannot see (naming, restarts, SAS). */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { AzureDriver } from '../../src/storage/azure.js';
import { parseAzureOptions } from '../../src/storage/azure-options.js';
import { StorageError } from '../../src/storage/driver.js';
import { DRIVERS } from '../../src/storage/drivers.js';
import { blobNames, startAzurite, type Azurite } from './azurite.js';
import { blobDataPath, chunkedUploadAcrossRegistries, MiB } from './helpers.js';

const KEY = Buffer.alloc(64, 7).toString('base64');

describe('azure driver parameters', () => {
  const base = { accountname: 'acct', accountkey: KEY, container: 'registry' };
  const parse = (o: Record<string, unknown>, warnings: string[] = []) => parseAzureOptions(o, (m) => warnings.push(m));
  const fails = (o: Record<string, unknown>, re: RegExp) => assert.throws(() => parse(o), re);

  it("Distribution 2.8's keys: defaults for realm and the service URL, shared key, 2.8 naming", () => {
    const s = parse(base);
    assert.equal(s.serviceURL, 'https://acct.blob.core.windows.net');
    assert.equal(s.realm, 'core.windows.net');
    assert.deepEqual(s.credentials, { type: 'shared_key' });
    assert.equal(s.prefix, '/', 'no rootdirectory: the path is the blob name, leading slash included');
    assert.equal(s.maxRetries, 5);
    assert.equal(s.retryDelayMs, 100);
    assert.equal(s.skipVerify, false);
    assert.equal(parse({ ...base, realm: 'core.chinacloudapi.cn' }).serviceURL, 'https://acct.blob.core.chinacloudapi.cn');
    assert.equal(parse({ ...base, realm: 'x.y', serviceurl: 'http://127.0.0.1:10000/acct/' }).serviceURL, 'http://127.0.0.1:10000/acct');
  });

  it("rootdirectory names blobs as Distribution 3 does (no leading slash); '/' is the container's top", () => {
    assert.equal(parse({ ...base, rootdirectory: '/some/root/' }).prefix, 'some/root/');
    assert.equal(parse({ ...base, rootdirectory: 'r' }).prefix, 'r/');
    assert.equal(parse({ ...base, rootdirectory: '/' }).prefix, '');
    fails({ ...base, rootdirectory: '/a//b' }, /rootdirectory/);
  });

  it('credentials: shared_key, client_secret (tenantid, clientid, secret), default_credentials', () => {
    assert.deepEqual(parse({ ...base, credentials: { type: 'shared_key' } }).credentials, { type: 'shared_key' });
    const warnings: string[] = [];
    const cs = parse({ ...base, credentials: { type: 'client_secret', tenantid: 't', clientid: 'c', secret: 's' } }, warnings);
    assert.deepEqual(cs.credentials, { type: 'client_secret', tenantId: 't', clientId: 'c', secret: 's' });
    assert.equal(cs.accountKey, undefined);
    assert.match(warnings.join('\n'), /accountkey is not used with credentials.type client_secret/);
    assert.deepEqual(parse({ accountname: 'acct', container: 'registry', credentials: { type: 'default_credentials' } }).credentials, { type: 'default_credentials' });
    fails({ ...base, credentials: { type: 'client_secret', tenantid: 't' } }, /client_secret needs credentials.clientid, credentials.secret/);
    fails({ ...base, credentials: { type: 'default' } }, /invalid credentials type "default" \(expected one of shared_key, client_secret, default_credentials\)/);
    fails({ accountname: 'acct', container: 'registry', credentials: { type: 'shared_key' } }, /shared_key needs the accountkey/);
    fails({ accountname: 'acct', container: 'registry' }, /no accountkey parameter provided/);
    fails({ ...base, credentials: 'shared_key' }, /credentials must be a map/);
  });

  it('refuses missing or malformed values, naming the key', () => {
    fails({ accountkey: KEY, container: 'registry' }, /^Error: storage.azure: no accountname parameter provided$/);
    fails({ accountname: 'acct', accountkey: KEY }, /no container parameter provided/);
    fails({ ...base, accountname: 'Bad_Name' }, /accountname "Bad_Name"/);
    for (const c of ['ab', 'Registry', 'a--b', '-ab', 'ab-', 'a_b', 'x'.repeat(64)]) fails({ ...base, container: c }, /is not a valid container name/);
    fails({ ...base, accountkey: 'not base64!' }, /accountkey must be the base64 account key/);
    fails({ ...base, serviceurl: 'ftp://h/x' }, /serviceurl must be an http or https URL/);
    fails({ ...base, serviceurl: 'no url' }, /serviceurl must be an http or https URL/);
    fails({ ...base, serviceurl: 'https://h/?sv=1' }, /must not have a query/);
    fails({ ...base, retry_delay: 'soon' }, /retry_delay must be a duration/);
    fails({ ...base, max_retries: 'many' }, /max_retries must be an integer/);
    fails({ ...base, max_retries: -2 }, /max_retries must be an integer ≥ -1/);
    fails({ ...base, skipverify: 'maybe' }, /skipverify must be a boolean/);
  });

  it('max_retries, retry_delay, skipverify; connectionstring is reported as unused', () => {
    const warnings: string[] = [];
    const s = parse({ ...base, max_retries: '7', retry_delay: '1s', skipverify: 'true', connectionstring: 'AccountName=x' }, warnings);
    assert.equal(s.maxRetries, 7);
    assert.equal(s.retryDelayMs, 1000);
    assert.equal(s.skipVerify, true);
    assert.equal(parse({ ...base, max_retries: 0 }).maxRetries, 5, '0 is the default, as in Distribution');
    assert.equal(parse({ ...base, max_retries: -1 }).maxRetries, -1);
    assert.match(warnings.join('\n'), /connectionstring is not used/);
  });

  it('is registered in DRIVERS; token credentials are built without contacting anyone', async () => {
    const d = await DRIVERS.azure!({ ...base, credentials: { type: 'client_secret', tenantid: 't', clientid: 'c', secret: 's' } });
    assert.ok(d instanceof AzureDriver);
    assert.ok((await DRIVERS.azure!({ accountname: 'acct', container: 'registry', credentials: { type: 'default_credentials' }, skipverify: true })) instanceof AzureDriver);
    await assert.rejects(DRIVERS.azure!({ accountname: 'acct' }), /no container parameter provided/);
  });
});

describe('azure driver on Azurite', () => {
  let azurite: Azurite;
  let container: ContainerClient;
  const make = (extra: Record<string, unknown> = {}, redirect = true) =>
    AzureDriver.fromOptions(azurite.options(container.containerName, extra), { redirect });

  before(async () => {
    azurite = await startAzurite();
    container = await azurite.createContainer('specifics');
  });

  after(async () => {
    await container?.delete();
  });

  it("names blobs as Distribution: 2.8 keeps the leading '/', rootdirectory gives 3.x names; reads what others wrote", async () => {
    const link = '/docker/registry/v2/repositories/a/_layers/sha256/ab/link';
    await make().putContent(link, Buffer.from('sha256:ab'));
    await make({ rootdirectory: '/some/root/' }).putContent(link, Buffer.from('sha256:ab'));
    await make({ rootdirectory: '/' }).putContent(link, Buffer.from('sha256:ab'));
    assert.deepEqual(await blobNames(container), [
      '/docker/registry/v2/repositories/a/_layers/sha256/ab/link',
      'docker/registry/v2/repositories/a/_layers/sha256/ab/link',
      'some/root/docker/registry/v2/repositories/a/_layers/sha256/ab/link',
    ]);
    // Written by another program as Distribution 2.8 writes a blob (an append blob named with the path): read, listed, walked.
    const other = container.getAppendBlobClient('/docker/registry/v2/blobs/sha256/cd/cdef/data');
    await other.create();
    await other.appendBlock(Buffer.from('blob'), 4);
    const d = make();
    assert.deepEqual(await d.getContent('/docker/registry/v2/blobs/sha256/cd/cdef/data'), Buffer.from('blob'));
    assert.deepEqual(await d.list('/docker/registry/v2'), ['/docker/registry/v2/blobs', '/docker/registry/v2/repositories']);
    const walked: string[] = [];
    await d.walk('/docker', (info) => void walked.push(info.path));
    assert.ok(walked.includes('/docker/registry/v2/blobs/sha256/cd/cdef/data'));
    assert.deepEqual(await make({ rootdirectory: '/some/root' }).list('/'), ['/docker']);
    await d.delete('/docker');
    await make({ rootdirectory: '/some/root' }).delete('/docker');
    await make({ rootdirectory: '/' }).delete('/docker');
    assert.deepEqual(await blobNames(container), []);
  });

  it('an upload resumes on another driver instance (a restart), and one begun by Distribution (an append blob)', async () => {
    const p = '/docker/registry/v2/repositories/r/_uploads/u1/data';
    const parts = [randomBytes(5 * MiB + 3), randomBytes(123), randomBytes(4 * MiB)];
    let w = await make().writer(p, false);
    await w.write(parts[0]);
    await w.close();
    w = await make().writer(p, true);
    assert.equal(w.size, parts[0].length);
    await w.write(parts[1]);
    await w.close();
    w = await make().writer(p, true);
    assert.equal(w.size, parts[0].length + parts[1].length);
    await w.write(parts[2]);
    await w.commit();
    const props = await container.getBlobClient(p).getProperties();
    assert.equal(props.blobType, 'AppendBlob');
    assert.ok((await make().getContent(p)).equals(Buffer.concat(parts)));

    // Distribution's writer leaves an append blob: Wharf appends to it.
    const q = '/docker/registry/v2/repositories/r/_uploads/u2/data';
    const theirs = container.getAppendBlobClient(q);
    await theirs.create();
    await theirs.appendBlock(Buffer.from('abc'), 3);
    const ours = await make().writer(q, true);
    assert.equal(ours.size, 3);
    await ours.write(Buffer.from('def'));
    await ours.commit();
    assert.deepEqual(await make().getContent(q), Buffer.from('abcdef'));
    await make().delete('/docker');
  });

  it('two writers on one file: the second append fails instead of interleaving bytes', async () => {
    const p = '/race/data';
    const a = await make().writer(p, false);
    await a.write(Buffer.from('aaa'));
    await a.close();
    const b1 = await make().writer(p, true);
    const b2 = await make().writer(p, true);
    await b1.write(Buffer.from('bbb'));
    await b1.close();
    await b2.write(Buffer.from('ccc'));
    await assert.rejects(() => b2.close(), (err: unknown) => err instanceof StorageError && /appended to by someone else/.test(err.message));
    assert.deepEqual(await make().getContent(p), Buffer.from('aaabbb'));
    // Appending to a non-empty block blob (putContent's) is refused; an empty one becomes an append blob.
    await make().putContent('/race/block', Buffer.from('x'));
    await assert.rejects(() => make().writer('/race/block', true), /cannot append to \/race\/block: it is a BlockBlob blob of 1 bytes/);
    await make().delete('/race');
  });

  it('a chunked blob upload moves between two registry instances and is served from the same container', async () => {
    const { a, digest } = await chunkedUploadAcrossRegistries(make, [randomBytes(6 * MiB + 5), randomBytes(MiB), randomBytes(5 * MiB + 1)]);
    assert.ok((await blobNames(container)).includes(`/${blobDataPath(digest)}`));
    await a.driver.delete('/docker');
  });

  it('redirects to a read-only SAS URL unless storage.redirect.disable; the URL serves the bytes', async () => {
    const content = randomBytes(3 * MiB);
    await make().putContent('/sas/data', content);
    const url = await make().redirectURL('GET', '/sas/data');
    assert.ok(url !== null);
    assert.ok(url.startsWith(`${azurite.endpoint}/${container.containerName}//sas/data?`), url);
    const params = new URL(url).searchParams;
    assert.equal(params.get('sp'), 'r', 'read permission only');
    const expires = Date.parse(params.get('se')!);
    assert.ok(expires > Date.now() + 19 * 60_000 && expires <= Date.now() + 21 * 60_000, 'expires in 20 minutes');
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(content));
    const tampered = url.replace('sp=r', 'sp=rw');
    assert.equal((await fetch(tampered)).status, 403, 'the signature covers the permissions');
    assert.equal((await fetch(url, { method: 'PUT', body: 'x', headers: { 'x-ms-blob-type': 'BlockBlob' } })).status, 403, 'no writes');
    assert.equal(await make({}, false).redirectURL('GET', '/sas/data'), null);
    assert.equal(await make().redirectURL('DELETE', '/sas/data'), null);
    await make().delete('/sas');
  });

  it('creates a missing container on first use, as Distribution 2.8 does', async () => {
    const name = `wharf-created-${randomBytes(4).toString('hex')}`;
    const d = AzureDriver.fromOptions(azurite.options(name));
    try {
      await d.putContent('/f', Buffer.from('x'));
      assert.ok(await azurite.service.getContainerClient(name).exists());
      assert.deepEqual(await d.list('/'), ['/f']);
    } finally {
      await azurite.service.getContainerClient(name).deleteIfExists();
    }
  });
});
