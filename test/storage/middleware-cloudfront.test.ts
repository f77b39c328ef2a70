// The `cloudfront` storage middleware: canned-policy URLs verified with the public half of a key
// pair made here, expiry from `duration`, `ipfilteredby` against a local HTTP server serving an
// ip-ranges.json (refreshes, failures), the client IP as Distribution reads it, and config errors.
// The s3 driver underneath only presigns (no request leaves), so no S3 server is needed here;
// test/e2e/storage-redirect.test.ts runs it on Ceph RGW, next to Distribution 2.8.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ConfigError } from '../../src/config/index.js';
import { clientIP } from '../../src/server/client-ip.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { CloudFrontMiddleware, cannedPolicy } from '../../src/storage/middleware/cloudfront.js';
import { applyStorageMiddleware, type WrappedStorage } from '../../src/storage/middleware/index.js';
import { S3Driver } from '../../src/storage/s3.js';
import { verifyCloudFrontURL } from './cloudfront-fake.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-cloudfront-'));
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const KEY_FILE = join(dir, 'pk.pem');
writeFileSync(KEY_FILE, privateKey.export({ type: 'pkcs1', format: 'pem' }));
const BASE = 'https://d111111abcdef8.cloudfront.net';
const BLOB = '/docker/registry/v2/blobs/sha256/ab/abcd/data';

function s3(rootdirectory = '/reg/root'): S3Driver {
  return S3Driver.fromOptions({ region: 'us-east-1', bucket: 'b', accesskey: 'a', secretkey: 's', regionendpoint: 'http://127.0.0.1:9', rootdirectory });
}

function captureLog(): { log: pino.Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const stream = new Writable({ write: (c, _e, done) => (out.push(String(c)), done()) });
  return { log: pino({ level: 'debug' }, stream), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

const wrapped: WrappedStorage[] = [];
async function cloudfront(options: Record<string, unknown>, driver: S3Driver | FilesystemDriver = s3(), log?: pino.Logger): Promise<CloudFrontMiddleware> {
  const w = await applyStorageMiddleware(driver, [{ index: 0, name: 'cloudfront', options: { baseurl: BASE, privatekey: KEY_FILE, keypairid: 'K2JCJMDEHXQW5F', ...options } }], { redirect: true, log });
  wrapped.push(w);
  return w.driver as CloudFrontMiddleware;
}

after(() => {
  for (const w of wrapped) w.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('cloudfront middleware: signed URLs', () => {
  it('signs baseurl + the s3 key (rootdirectory included) with a canned policy, valid for 20 minutes by default', async () => {
    const driver = await cloudfront({});
    const before = Math.floor(Date.now() / 1000);
    const location = (await driver.redirectURL('GET', BLOB))!;
    const { resource, expires, keyPairId } = verifyCloudFrontURL(location, publicKey);
    assert.equal(resource, `${BASE}/reg/root${BLOB}`);
    assert.equal(keyPairId, 'K2JCJMDEHXQW5F');
    assert.ok(expires >= before + 1200 && expires <= Math.floor(Date.now() / 1000) + 1200, `expires ${expires} is 20 minutes ahead`);
    assert.throws(() => verifyCloudFrontURL(location.replace('/abcd/', '/abce/'), publicKey), /the signature verifies/, 'another path does not verify');
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    assert.throws(() => verifyCloudFrontURL(location, other), /signature verifies/, 'another key does not verify');
  });

  it('takes duration, a scheme-less or path-carrying baseurl, a PKCS#8 key, and a bucket without rootdirectory', async () => {
    const pkcs8 = join(dir, 'pk8.pem');
    writeFileSync(pkcs8, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const driver = await cloudfront({ baseurl: 'cdn.example.com/prefix', duration: '1h30m', privatekey: pkcs8 }, s3(''));
    const now = Math.floor(Date.now() / 1000);
    const { resource, expires } = verifyCloudFrontURL((await driver.redirectURL('GET', BLOB))!, publicKey);
    assert.equal(resource, `https://cdn.example.com/prefix/${BLOB.slice(1)}`);
    assert.ok(Math.abs(expires - (now + 5400)) <= 1, `expires ${expires} ≈ now + 1h30m`);
  });

  it('writes the policy JSON as Go does (HTML characters escaped)', () => {
    assert.equal(cannedPolicy('https://a/b?x=<&>', 7), '{"Statement":[{"Resource":"https://a/b?x=\\u003c\\u0026\\u003e","Condition":{"DateLessThan":{"AWS:EpochTime":7}}}]}');
  });

  it('leaves other drivers alone, with a warning (Distribution signs s3 keys only)', async () => {
    const { log, lines } = captureLog();
    const fsDriver = new FilesystemDriver({ rootdirectory: join(dir, 'fs') });
    const w = await applyStorageMiddleware(fsDriver, [{ index: 3, name: 'cloudfront', options: { baseurl: BASE, privatekey: KEY_FILE, keypairid: 'K' } }], { redirect: true, log });
    assert.equal(w.driver, fsDriver);
    assert.ok(lines().some((l) => l.level === 40 && /middleware\.storage\[3\] \(cloudfront\): works on the s3 storage driver only, not on filesystem/.test(String(l.msg))));
  });
});

describe('cloudfront middleware: ipfilteredby', () => {
  let server: http.Server;
  let rangesURL: string;
  let answer: { status: number; body: string };
  let served = 0;
  const ranges = (...entries: { cidr: string; region: string }[]) =>
    JSON.stringify({
      syncToken: '1',
      prefixes: entries.filter((e) => !e.cidr.includes(':')).map((e) => ({ ip_prefix: e.cidr, region: e.region, service: 'AMAZON' })),
      ipv6_prefixes: entries.filter((e) => e.cidr.includes(':')).map((e) => ({ ipv6_prefix: e.cidr, region: e.region, service: 'AMAZON' })),
    });
  const WITH_LOOPBACK = ranges({ cidr: '3.5.140.0/22', region: 'ap-northeast-2' }, { cidr: '127.0.0.0/8', region: 'US-Test-1' }, { cidr: '2600:1f14::/35', region: 'us-west-2' }, { cidr: 'bogus', region: 'x' });
  const WITHOUT_LOOPBACK = ranges({ cidr: '3.5.140.0/22', region: 'ap-northeast-2' });

  before(async () => {
    answer = { status: 200, body: WITH_LOOPBACK };
    server = http.createServer((_req, res) => {
      served++;
      res.writeHead(answer.status, { 'Content-Type': 'application/json' }).end(answer.body);
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    rangesURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ip-ranges.json`;
  });
  after(() => server.close());

  const isS3 = (u: string | null) => u!.startsWith('http://127.0.0.1:9/b/reg/root/docker/') && u!.includes('X-Amz-Signature=');
  const isCloudFront = (u: string | null) => u!.startsWith(`${BASE}/reg/root/docker/`);

  it('aws: clients in any AWS range get the s3 driver\'s presigned URL, others CloudFront', async () => {
    answer = { status: 200, body: WITH_LOOPBACK };
    const driver = await cloudfront({ ipfilteredby: 'AWS ', iprangesurl: rangesURL });
    assert.ok(isS3(await driver.redirectURL('GET', BLOB, { ip: '127.0.0.1' })));
    assert.ok(isS3(await driver.redirectURL('GET', BLOB, { ip: '2600:1f14:1:2::3' })), 'IPv6 ranges too');
    assert.ok(isCloudFront(await driver.redirectURL('GET', BLOB, { ip: '10.1.2.3' })));
    assert.ok(isCloudFront(await driver.redirectURL('GET', BLOB, { ip: '2600:1f15::1' })));
    assert.ok(isCloudFront(await driver.redirectURL('GET', BLOB, { ip: 'not-an-ip' })));
    assert.ok(isCloudFront(await driver.redirectURL('GET', BLOB)), 'no client: CloudFront');
  });

  it('awsregion: only the listed regions (case-insensitive, comma-separated) go to s3', async () => {
    answer = { status: 200, body: WITH_LOOPBACK };
    const inRegion = await cloudfront({ ipfilteredby: 'awsregion', awsregion: 'eu-west-1, us-test-1', iprangesurl: rangesURL });
    assert.ok(isS3(await inRegion.redirectURL('GET', BLOB, { ip: '127.0.0.53' })));
    assert.ok(isCloudFront(await inRegion.redirectURL('GET', BLOB, { ip: '3.5.140.1' })), 'an AWS IP of another region');
    const elsewhere = await cloudfront({ ipfilteredby: 'awsregion', awsregion: 'ap-northeast-2', iprangesurl: rangesURL });
    assert.ok(isCloudFront(await elsewhere.redirectURL('GET', BLOB, { ip: '127.0.0.1' })));
    assert.ok(isS3(await elsewhere.redirectURL('GET', BLOB, { ip: '3.5.143.255' })));
  });

  it('refreshes every updatefrequency; a failed refresh is logged and keeps the last ranges', async () => {
    answer = { status: 200, body: WITHOUT_LOOPBACK };
    const { log, lines } = captureLog();
    const driver = await cloudfront({ ipfilteredby: 'aws', iprangesurl: rangesURL, updatefrequency: '100ms' }, s3(), log);
    assert.ok(isCloudFront(await driver.redirectURL('GET', BLOB, { ip: '127.0.0.1' })));
    answer = { status: 200, body: WITH_LOOPBACK };
    await until(async () => isS3(await driver.redirectURL('GET', BLOB, { ip: '127.0.0.1' })), 'the new ranges are used');
    assert.ok(lines().some((l) => l.msg === 'cloudfront: unparseable CIDR in the AWS IP ranges, skipped' && l.cidr === 'bogus'));
    for (const bad of [{ status: 503, body: 'busy' }, { status: 200, body: '{"prefixes": [' }, { status: 200, body: '{"prefixes": 5}' }]) {
      answer = bad;
      const seen = served;
      await until(async () => served >= seen + 2, `refreshes go on after ${bad.body}`);
      assert.ok(isS3(await driver.redirectURL('GET', BLOB, { ip: '127.0.0.1' })), 'the last good ranges stay');
    }
    const errors = lines().filter((l) => l.level === 50 && l.msg === 'cloudfront: cannot update the AWS IP ranges').map((l) => String(l.err));
    assert.ok(errors.some((e) => /answered 503: busy/.test(e)), errors.join('\n'));
    assert.ok(errors.some((e) => /is not JSON/.test(e)), errors.join('\n'));
    assert.ok(errors.some((e) => /"prefixes" is not a list/.test(e)), errors.join('\n'));
  });

  it('an unreachable iprangesurl: starts, warns, and sends everyone to CloudFront', async () => {
    const { log, lines } = captureLog();
    const closed = await new Promise<number>((ok) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as AddressInfo).port;
        s.close(() => ok(port));
      });
    });
    const driver = await cloudfront({ ipfilteredby: 'aws', iprangesurl: `http://127.0.0.1:${closed}/ip-ranges.json` }, s3(), log);
    assert.ok(isCloudFront(await driver.redirectURL('GET', BLOB, { ip: '127.0.0.1' })));
    assert.ok(lines().some((l) => l.level === 40 && l.msg === 'cloudfront: cannot update the AWS IP ranges'));
  });

  it('with storage.redirect.disable the ranges are never fetched', async () => {
    const seen = served;
    const inner = s3();
    const w = await applyStorageMiddleware(inner, [{ index: 0, name: 'cloudfront', options: { baseurl: BASE, privatekey: KEY_FILE, keypairid: 'K', ipfilteredby: 'aws', iprangesurl: rangesURL } }], { redirect: false });
    assert.equal(w.driver, inner);
    assert.equal(served, seen);
  });
});

describe('the client IP, as Distribution reads it', () => {
  const req = (remoteAddress: string, headers: Record<string, string> = {}) => ({ socket: { remoteAddress }, headers }) as unknown as http.IncomingMessage;
  it('takes the first X-Forwarded-For entry, then X-Real-Ip, when they are IPs; else the peer', () => {
    assert.equal(clientIP(req('10.0.0.1')), '10.0.0.1');
    assert.equal(clientIP(req('::ffff:10.0.0.1')), '10.0.0.1');
    assert.equal(clientIP(req('10.0.0.1', { 'x-forwarded-for': ' 3.5.140.1 , 10.9.9.9' })), '3.5.140.1');
    assert.equal(clientIP(req('10.0.0.1', { 'x-forwarded-for': 'unknown', 'x-real-ip': '2600:1f14::1' })), '2600:1f14::1');
    assert.equal(clientIP(req('10.0.0.1', { 'x-forwarded-for': '3.5.140.1:443', 'x-real-ip': 'nope' })), '10.0.0.1');
  });
});

describe('cloudfront middleware: configuration errors name the key', () => {
  const err = async (options: Record<string, unknown>, index = 0): Promise<string> => {
    try {
      const w = await applyStorageMiddleware(s3(), [{ index, name: 'cloudfront', options: { baseurl: BASE, privatekey: KEY_FILE, keypairid: 'K', ...options } }], { redirect: true });
      w.close();
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.message;
    }
    assert.fail(`accepted ${JSON.stringify(options)}`);
  };
  const k = 'middleware.storage[0].options';

  it('required keys', async () => {
    assert.match(await err({ baseurl: undefined }), new RegExp(`^${escape(k)}\\.baseurl: required, the URL CloudFront serves the bucket at`));
    assert.match(await err({ privatekey: undefined }), new RegExp(`^${escape(k)}\\.privatekey: required, the path of the PEM file`));
    assert.match(await err({ keypairid: undefined }), new RegExp(`^${escape(k)}\\.keypairid: required`));
    assert.match(await err({ keypairid: 12 }), /keypairid: expected the CloudFront key pair or public key ID, got 12$/);
  });

  it('the private key file', async () => {
    assert.match(await err({ privatekey: join(dir, 'missing.pem') }, 4), /^middleware\.storage\[4\]\.options\.privatekey: cannot read ".*missing\.pem": ENOENT$/);
    writeFileSync(join(dir, 'junk.pem'), 'not a key');
    assert.match(await err({ privatekey: join(dir, 'junk.pem') }), /privatekey: ".*junk\.pem" is not an unencrypted PEM private key/);
    writeFileSync(join(dir, 'ec.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    assert.match(await err({ privatekey: join(dir, 'ec.pem') }), /privatekey: ".*ec\.pem" holds a ec key; CloudFront signs with RSA$/);
    writeFileSync(join(dir, 'enc.pem'), privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }));
    assert.match(await err({ privatekey: join(dir, 'enc.pem') }), /privatekey: ".*enc\.pem" is not an unencrypted PEM private key/);
  });

  it('URLs, durations and the IP filter', async () => {
    assert.match(await err({ baseurl: 'ftp://cdn.example.com' }), /baseurl: expected an http or https URL, got scheme "ftp"$/);
    assert.match(await err({ baseurl: 'https://cdn.example.com/?a=b' }), /baseurl: expected a URL without query or fragment/);
    assert.match(await err({ baseurl: 'https://cdn.exämple.com' }), /baseurl: expected printable ASCII only/);
    assert.match(await err({ duration: '3000 s' }), /duration: expected a duration such as "20m": invalid duration "3000 s"/);
    assert.match(await err({ duration: '-5m' }), /duration: expected a positive duration, got "-5m"$/);
    assert.match(await err({ updatefrequency: 'often' }), /updatefrequency: expected a duration such as "20m"/);
    assert.match(await err({ updatefrenquency: '0s' }), /updatefrenquency: expected a positive duration/);
    assert.match(await err({ ipfilteredby: 'everyone' }), /ipfilteredby: expected one of none, aws, awsregion, got "everyone"$/);
    assert.match(await err({ ipfilteredby: 'awsregion' }), /awsregion: required, a comma-separated list of AWS regions/);
    assert.match(await err({ ipfilteredby: 'awsregion', awsregion: ' , ' }), /awsregion: required, a comma-separated list/);
    assert.match(await err({ iprangesurl: 'ip-ranges.json' }), /iprangesurl: expected an absolute http\(s\) URL/);
  });

  it('warns about what Distribution ignores or misspelt, and uses the default', async () => {
    const { log, lines } = captureLog();
    const driver = await cloudfront({ duration: 3000, updatefrenquency: '6h', colour: 'blue' }, s3(), log);
    assert.equal(driver.settings.durationMs, 20 * 60_000, 'a number without unit is ignored, as documented by Distribution');
    const warnings = lines().filter((l) => l.level === 40).map((l) => String(l.msg));
    assert.ok(warnings.some((w) => /^middleware\.storage\[0\]\.options\.duration: 3000 has no unit, so it is ignored/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => /options\.updatefrenquency: read as updatefrequency/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => /options\.colour: not an option of the cloudfront middleware, ignored/.test(w)), warnings.join('\n'));
  });
});

function escape(s: string): string {
  return s.replace(/[.[\]]/g, '\\$&');
}

async function until(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
