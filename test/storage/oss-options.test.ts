/** The oss driver's parameters and where its requests and redirects go (no server needed). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OSS from 'ali-oss';
import { OssDriver } from '../../src/storage/oss.js';
import { encryptionHeaders, makeOssClient, parseOssOptions, signedURL, type OssSettings } from '../../src/storage/oss-options.js';

const MiB = 1024 * 1024;
const base = { accesskeyid: 'LTAIexample', accesskeysecret: 'c2VjcmV0', region: 'oss-cn-beijing', bucket: 'registry-bucket' };

/** Where ali-oss sends an object request for these settings (its own URL builder). */
function requestURL(s: OssSettings, key: string): string {
  return (makeOssClient(s) as unknown as { _objectUrl(name: string): string })._objectUrl(key);
}

async function redirectBase(options: Record<string, unknown>): Promise<string> {
  const url = await OssDriver.fromOptions({ ...base, ...options }).redirectURL('GET', '/docker/registry/v2/blobs/sha256/ab/abcd/data');
  return url!.slice(0, url!.indexOf('?'));
}

describe('oss driver options', () => {
  it("reads every key of Distribution's oss driver, with its defaults", () => {
    const d = parseOssOptions(base);
    assert.deepEqual(
      { ...d },
      {
        accessKeyId: 'LTAIexample',
        accessKeySecret: 'c2VjcmV0',
        region: 'oss-cn-beijing',
        endpoint: undefined,
        internal: false,
        bucket: 'registry-bucket',
        encrypt: false,
        encryptionKeyId: undefined,
        secure: true,
        skipVerify: false,
        chunkSize: 10 * MiB,
        rootDirectory: '',
        copyThreshold: 128 * MiB,
        copyPartSize: 128 * MiB,
      },
    );
    const all = parseOssOptions({
      ...base,
      endpoint: 'registry-bucket.oss-cn-beijing.aliyuncs.com',
      internal: 'false',
      encrypt: true,
      encryptionkeyid: 'kms-key-1',
      secure: 'false',
      skipverify: 'true',
      chunksize: '6291456',
      rootdirectory: '/registry',
    });
    assert.equal(all.endpoint, 'registry-bucket.oss-cn-beijing.aliyuncs.com');
    assert.equal(all.encrypt, true);
    assert.equal(all.encryptionKeyId, 'kms-key-1');
    assert.equal(all.secure, false);
    assert.equal(all.skipVerify, true);
    assert.equal(all.chunkSize, 6 * MiB);
    assert.equal(all.rootDirectory, '/registry');
  });

  it('errors name the key and say what was expected', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...base, accesskeyid: undefined }, /^storage\.oss\.accesskeyid: required \(the AccessKey ID\)$/],
      [{ ...base, accesskeysecret: '' }, /^storage\.oss\.accesskeysecret: required/],
      [{ ...base, region: undefined }, /^storage\.oss\.region: required \(the OSS region, e\.g\. oss-cn-hangzhou\)$/],
      [{ ...base, region: 'Hangzhou!' }, /^storage\.oss\.region: "Hangzhou!" is not an OSS region name/],
      [{ ...base, bucket: undefined }, /^storage\.oss\.bucket: required/],
      [{ ...base, bucket: 'Bad_Bucket' }, /^storage\.oss\.bucket: "Bad_Bucket" is not an OSS bucket name/],
      [{ ...base, chunksize: 4 * MiB }, /^storage\.oss\.chunksize: 4194304 is below the smallest part size, 5242880 bytes \(5 MiB\)$/],
      [{ ...base, chunksize: 6 * 1024 * MiB }, /^storage\.oss\.chunksize: 6442450944 is above OSS's largest part size/],
      [{ ...base, chunksize: '10MB' }, /^storage\.oss\.chunksize: expected an integer number of bytes, got "10MB"$/],
      [{ ...base, secure: 'maybe' }, /^storage\.oss\.secure: expected true or false, got "maybe"$/],
      [{ ...base, internal: 2 }, /^storage\.oss\.internal: expected true or false, got 2$/],
      [{ ...base, encrypt: 'yes please' }, /^storage\.oss\.encrypt: expected true or false/],
      [{ ...base, skipverify: [] }, /^storage\.oss\.skipverify: expected true or false/],
      [{ ...base, endpoint: 'ftp://host/path' }, /^storage\.oss\.endpoint: expected a host name with an optional port/],
      [{ ...base, rootdirectory: { a: 1 } }, /^storage\.oss\.rootdirectory: expected a string/],
    ];
    for (const [options, message] of cases) {
      assert.throws(() => parseOssOptions(options), (err: Error) => message.test(err.message) || assert.fail(`${err.message} !~ ${message}`), JSON.stringify(options));
    }
  });

  it('warns about keys that do not do what they seem to', () => {
    const warnings: string[] = [];
    parseOssOptions({ ...base, endpoint: 'oss.example.com', internal: true, encryptionkeyid: 'k' }, (m) => warnings.push(m));
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!, /storage\.oss\.internal is ignored: endpoint names the host/);
    assert.match(warnings[1]!, /storage\.oss\.encryptionkeyid is set without encrypt/);
  });

  it('encrypt asks for AES256; encryptionkeyid for KMS with that key (with or without encrypt, as Distribution)', () => {
    assert.deepEqual(encryptionHeaders(parseOssOptions(base)), {});
    assert.deepEqual(encryptionHeaders(parseOssOptions({ ...base, encrypt: true })), { 'x-oss-server-side-encryption': 'AES256' });
    assert.deepEqual(encryptionHeaders(parseOssOptions({ ...base, encryptionkeyid: 'k1' })), {
      'x-oss-server-side-encryption': 'KMS',
      'x-oss-server-side-encryption-key-id': 'k1',
    });
  });

  it('region, internal, secure and endpoint choose the host requests and redirects go to', async () => {
    const key = 'docker/registry/v2/blobs/sha256/ab/abcd/data';
    const cases: Array<[Record<string, unknown>, string]> = [
      [{}, 'https://registry-bucket.oss-cn-beijing.aliyuncs.com/'],
      [{ internal: true }, 'https://registry-bucket.oss-cn-beijing-internal.aliyuncs.com/'],
      [{ secure: false }, 'http://registry-bucket.oss-cn-beijing.aliyuncs.com/'],
      [{ internal: true, secure: false }, 'http://registry-bucket.oss-cn-beijing-internal.aliyuncs.com/'],
      // Distribution's endpoint is the bucket's own host, used as given...
      [{ endpoint: 'registry-bucket.oss-cn-shanghai.aliyuncs.com' }, 'https://registry-bucket.oss-cn-shanghai.aliyuncs.com/'],
      [{ endpoint: 'registry-files.example.com', secure: false }, 'http://registry-files.example.com/'],
      [{ endpoint: 'registry-files.example.com:8443' }, 'https://registry-files.example.com:8443/'],
      // ...a regional service host gets the bucket in front, and a scheme in it wins over secure.
      [{ endpoint: 'oss-cn-shanghai.aliyuncs.com' }, 'https://registry-bucket.oss-cn-shanghai.aliyuncs.com/'],
      [{ endpoint: 'http://oss-cn-shanghai-internal.aliyuncs.com', secure: true }, 'http://registry-bucket.oss-cn-shanghai-internal.aliyuncs.com/'],
      [{ endpoint: '10.0.0.5:9000', secure: false }, 'http://10.0.0.5:9000/'],
    ];
    for (const [options, expected] of cases) {
      const s = parseOssOptions({ ...base, ...options });
      assert.equal(await redirectBase(options), `${expected}${key}`, `redirect for ${JSON.stringify(options)}`);
      if (!options.endpoint?.toString().startsWith('10.')) assert.equal(requestURL(s, key), `${expected}${key}`, `requests for ${JSON.stringify(options)}`);
    }
  });

  it("signs redirect URLs exactly as ali-oss's signatureUrl does", () => {
    const s = parseOssOptions({ ...base, rootdirectory: '/r' });
    const client = new OSS({ accessKeyId: s.accessKeyId, accessKeySecret: s.accessKeySecret, region: s.region, bucket: s.bucket, secure: true });
    for (const method of ['GET', 'HEAD'] as const) {
      const theirs = new URL(client.signatureUrl('r/docker/registry/v2/blobs/sha256/ab/abcd/data', { expires: 1200, method: method as 'GET' }));
      const ours = new URL(signedURL(s, method, 'r/docker/registry/v2/blobs/sha256/ab/abcd/data', Number(theirs.searchParams.get('Expires'))));
      assert.equal(ours.href, theirs.href, method);
    }
  });

  it('redirects only GET and HEAD, and not at all with storage.redirect.disable', async () => {
    const on = OssDriver.fromOptions(base);
    assert.equal(await on.redirectURL('PUT', '/x'), null);
    assert.equal(await on.redirectURL('DELETE', '/x'), null);
    assert.ok((await on.redirectURL('HEAD', '/x'))?.includes('Signature='));
    const off = OssDriver.fromOptions(base, { redirect: false });
    assert.equal(await off.redirectURL('GET', '/x'), null);
    const expires = Number(new URL((await on.redirectURL('GET', '/x'))!).searchParams.get('Expires'));
    assert.ok(Math.abs(expires - (Date.now() / 1000 + 20 * 60)) < 5, 'valid 20 minutes, as in Distribution');
  });
});
