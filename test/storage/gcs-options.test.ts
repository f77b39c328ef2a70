/** The gcs driver's parameters: every key of Distribution's gcs driver, defaults, and errors that name the key (no server). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_CHUNK_SIZE, DEFAULT_TOKEN_URI, parseGcsOptions } from '../../src/storage/gcs-options.js';
import { GcsDriver } from '../../src/storage/gcs.js';
import { DRIVERS } from '../../src/storage/drivers.js';
import { makeServiceAccount } from './gcs-fake.js';

const KiB = 1024;
const account = makeServiceAccount('https://oauth2.googleapis.com/token');

describe('gcs driver parameters', () => {
  const parse = (o: Record<string, unknown>, warnings: string[] = [], env: NodeJS.ProcessEnv = {}) => parseGcsOptions(o, (m) => warnings.push(m), env);
  const fails = (o: Record<string, unknown>, re: RegExp, env: NodeJS.ProcessEnv = {}) => assert.throws(() => parse(o, [], env), re);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-gcs-options-'));
  const keyFile = (content: unknown) => {
    const file = path.join(dir, `${Math.random().toString(36).slice(2)}.json`);
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };

  it("Distribution 2.8's defaults: bucket only, default credentials, 5 MiB chunks, 50 operations at once", () => {
    const s = parse({ bucket: 'registry' });
    assert.equal(s.bucket, 'registry');
    assert.equal(s.prefix, '', 'no rootdirectory: object names are the paths without their leading slash');
    assert.equal(s.chunkSize, DEFAULT_CHUNK_SIZE);
    assert.equal(DEFAULT_CHUNK_SIZE, 5 * 1024 * KiB);
    assert.equal(s.maxConcurrency, 50);
    assert.deepEqual(s.credentials, { kind: 'default' });
    assert.equal(s.userAgent, undefined);
    assert.equal(s.endpoint, undefined);
    assert.equal(parse({ bucket: 'my.bucket_name-1' }).bucket, 'my.bucket_name-1');
  });

  it('bucket is required and must be a bucket name', () => {
    fails({}, /^Error: storage.gcs: no bucket parameter provided$/);
    fails({ bucket: '' }, /no bucket parameter provided/);
    for (const b of ['ab', 'Registry', '-ab', 'ab-', 'a b', 'x'.repeat(64), 'a..b']) fails({ bucket: b }, /storage.gcs: bucket ".*" is not a bucket name/);
    fails({ bucket: { name: 'x' } }, /storage.gcs: bucket must be a string/);
  });

  it("rootdirectory: Distribution's prefix (slashes trimmed, one '/' appended); '/' is the bucket's top", () => {
    assert.equal(parse({ bucket: 'registry', rootdirectory: '/some/root/' }).prefix, 'some/root/');
    assert.equal(parse({ bucket: 'registry', rootdirectory: 'r' }).prefix, 'r/');
    assert.equal(parse({ bucket: 'registry', rootdirectory: '/' }).prefix, '');
    fails({ bucket: 'registry', rootdirectory: '/a//b' }, /storage.gcs: rootdirectory "\/a\/\/b" must be '\/'-separated names/);
    fails({ bucket: 'registry', rootdirectory: '/a/../b' }, /rootdirectory/);
  });

  it('chunksize: a positive multiple of 256 KiB, as a number or a numeric string', () => {
    assert.equal(parse({ bucket: 'registry', chunksize: 256 * KiB }).chunkSize, 256 * KiB);
    assert.equal(parse({ bucket: 'registry', chunksize: String(16 * 1024 * KiB) }).chunkSize, 16 * 1024 * KiB);
    for (const bad of [0, 100_000, 256 * KiB + 1, -256 * KiB]) fails({ bucket: 'registry', chunksize: bad }, /storage.gcs: chunksize must be a positive multiple of 262144 \(256 KiB\)/);
    fails({ bucket: 'registry', chunksize: 'big' }, /storage.gcs: chunksize must be an integer, "big" invalid/);
    fails({ bucket: 'registry', chunksize: 1.5 }, /chunksize must be an integer/);
  });

  it('maxconcurrency: values below 25 become 25 (with a warning), as in Distribution; non-integers fail', () => {
    assert.equal(parse({ bucket: 'registry', maxconcurrency: 80 }).maxConcurrency, 80);
    const warnings: string[] = [];
    assert.equal(parse({ bucket: 'registry', maxconcurrency: '10' }, warnings).maxConcurrency, 25);
    assert.match(warnings.join('\n'), /maxconcurrency 10 is below 25: using 25/);
    fails({ bucket: 'registry', maxconcurrency: 'many' }, /storage.gcs: maxconcurrency must be an integer/);
  });

  it('useragent is passed on', () => {
    assert.equal(parse({ bucket: 'registry', useragent: 'wharf-test/1' }).userAgent, 'wharf-test/1');
  });

  it('keyfile: a service-account JSON key; errors name the key and the file', () => {
    const good = keyFile(account.key);
    const s = parse({ bucket: 'registry', keyfile: good });
    assert.equal(s.credentials.kind, 'key');
    if (s.credentials.kind !== 'key') return;
    assert.equal(s.credentials.from, 'keyfile');
    assert.equal(s.credentials.key.clientEmail, account.email);
    assert.equal(s.credentials.key.privateKeyId, account.key.private_key_id);
    assert.equal(s.credentials.key.projectId, 'wharf-tests');
    assert.equal(s.credentials.key.tokenURI, 'https://oauth2.googleapis.com/token');
    fails({ bucket: 'registry', keyfile: path.join(dir, 'missing.json') }, /storage.gcs: keyfile .*missing.json cannot be read: ENOENT/);
    fails({ bucket: 'registry', keyfile: keyFile('{not json') }, /storage.gcs: keyfile .* is not JSON/);
    fails({ bucket: 'registry', keyfile: keyFile([1]) }, /is not a JSON object/);
    fails({ bucket: 'registry', keyfile: keyFile({ ...account.key, type: 'authorized_user' }) }, /storage.gcs: keyfile .*: type must be "service_account" \(a service-account key\), got "authorized_user"/);
    fails({ bucket: 'registry', keyfile: keyFile({ ...account.key, client_email: undefined }) }, /keyfile .*: client_email is missing/);
    fails({ bucket: 'registry', keyfile: keyFile({ ...account.key, private_key: undefined }) }, /keyfile .*: private_key is missing/);
    fails({ bucket: 'registry', keyfile: keyFile({ ...account.key, private_key: 'not a key' }) }, /keyfile .*: private_key is not a PEM private key/);
    fails({ bucket: 'registry', keyfile: keyFile({ ...account.key, token_uri: 'ftp://x' }) }, /keyfile .*: token_uri must be an http or https URL/);
  });

  it('credentials: the same key inline as a map; keyfile wins when both are given (warned)', () => {
    const s = parse({ bucket: 'registry', credentials: { ...account.key, token_uri: undefined } });
    assert.ok(s.credentials.kind === 'key' && s.credentials.from === 'credentials');
    assert.equal(s.credentials.kind === 'key' && s.credentials.key.tokenURI, DEFAULT_TOKEN_URI, 'token_uri defaults to Google');
    // A PEM pasted with literal \n sequences (single-quoted YAML) still works.
    const escaped = parse({ bucket: 'registry', credentials: { ...account.key, private_key: account.key.private_key.replace(/\n/g, '\\n') } });
    assert.equal(escaped.credentials.kind === 'key' && escaped.credentials.key.privateKey, account.key.private_key);
    fails({ bucket: 'registry', credentials: 'json' }, /storage.gcs: credentials must be a map/);
    fails({ bucket: 'registry', credentials: [account.key] }, /credentials must be a map/);
    fails({ bucket: 'registry', credentials: { ...account.key, type: undefined } }, /storage.gcs: credentials.type must be "service_account" \(a service-account key\), got nothing/);
    fails({ bucket: 'registry', credentials: { ...account.key, client_email: '' } }, /storage.gcs: credentials.client_email is missing/);
    fails({ bucket: 'registry', credentials: { ...account.key, private_key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' } }, /credentials.private_key is not a PEM private key/);
    fails({ bucket: 'registry', credentials: { ...account.key, client_email: { a: 1 } } }, /storage.gcs: credentials.client_email must be a string/);
    const warnings: string[] = [];
    const both = parse({ bucket: 'registry', keyfile: keyFile(account.key), credentials: { type: 'junk' } }, warnings);
    assert.ok(both.credentials.kind === 'key' && both.credentials.from === 'keyfile');
    assert.match(warnings.join('\n'), /storage.gcs.credentials is not used: keyfile is set/);
  });

  it('STORAGE_EMULATOR_HOST: another endpoint, as Google\'s libraries read it (a bare host:port is https)', () => {
    assert.equal(parse({ bucket: 'registry' }, [], { STORAGE_EMULATOR_HOST: 'http://127.0.0.1:4443/' }).endpoint, 'http://127.0.0.1:4443');
    assert.equal(parse({ bucket: 'registry' }, [], { STORAGE_EMULATOR_HOST: 'gcs.internal:8443' }).endpoint, 'https://gcs.internal:8443');
    fails({ bucket: 'registry' }, /STORAGE_EMULATOR_HOST must be an http or https origin/, { STORAGE_EMULATOR_HOST: 'http://h/storage/v1' });
    fails({ bucket: 'registry' }, /STORAGE_EMULATOR_HOST must be/, { STORAGE_EMULATOR_HOST: 'ftp://h' });
  });

  it('is registered in DRIVERS; the driver is built without contacting anyone', async () => {
    assert.ok((await DRIVERS.gcs!({ bucket: 'registry', credentials: account.key })) instanceof GcsDriver);
    assert.ok((await DRIVERS.gcs!({ bucket: 'registry' })) instanceof GcsDriver, 'default credentials are looked up on first use only');
    await assert.rejects(DRIVERS.gcs!({}), /storage.gcs: no bucket parameter provided/);
  });
});
