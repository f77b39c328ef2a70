// The http.tls table and checks: Distribution's suite names map to the OpenSSL names that OpenSSL
// itself gives those IANA names; configuration mistakes stop start-up naming the key.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { clientHelloALPN } from '../../src/server/tls/acme.js';
import { CIPHER_SUITES, DEFAULT_CIPHER_SUITES, opensslCiphers } from '../../src/server/tls/ciphers.js';
import { resolveTls, type TlsSettings } from '../../src/server/tls/options.js';

const NO_LE = { cachefile: '', email: '', hosts: [], directoryurl: '' };
const base = (t: Partial<TlsSettings>): TlsSettings => ({ certificate: '', key: '', clientcas: [], ciphersuites: [], letsencrypt: NO_LE, ...t });

describe('http.tls', () => {
  it('maps every Distribution suite name to the OpenSSL name OpenSSL gives it (those this OpenSSL still has)', () => {
    const r = spawnSync('openssl', ['ciphers', '-stdname', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const byIana = new Map(r.stdout.trim().split('\n').map((l) => { const [iana, , ossl] = l.trim().split(/\s+/); return [iana!, ossl!]; }));
    let checked = 0;
    for (const [name, suite] of Object.entries(CIPHER_SUITES)) {
      if (!byIana.has(name)) continue; // RC4 and 3DES: gone from OpenSSL 3's default provider
      assert.equal(suite.openssl, byIana.get(name), name);
      checked++;
    }
    assert.ok(checked >= 20, `only ${checked} suites checked`);
    assert.equal(Object.keys(CIPHER_SUITES).length, 25);
    for (const d of DEFAULT_CIPHER_SUITES) assert.ok(CIPHER_SUITES[d], d);
  });

  it('keeps the TLS 1.3 suites on when only older suites are listed (as Go), restricts them when named', () => {
    assert.equal(opensslCiphers(['TLS_RSA_WITH_AES_128_GCM_SHA256']), 'AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256');
    assert.equal(opensslCiphers(['TLS_AES_256_GCM_SHA384', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256']), 'TLS_AES_256_GCM_SHA384:ECDHE-RSA-AES128-GCM-SHA256');
    assert.throws(() => opensslCiphers(['TLS_NOPE']), /http\.tls\.ciphersuites: unknown TLS cipher suite "TLS_NOPE"/);
  });

  it('refuses configurations that cannot be served, naming the key', () => {
    assert.equal(resolveTls(base({})), undefined);
    assert.throws(() => resolveTls(base({ key: '/k' })), /http\.tls\.certificate: required/);
    assert.throws(() => resolveTls(base({ certificate: '/c' })), /http\.tls\.key: required/);
    assert.throws(() => resolveTls(base({ certificate: '/nonexistent.crt', key: '/k' })), /http\.tls\.certificate: cannot read \/nonexistent\.crt/);
    assert.throws(() => resolveTls(base({ certificate: '/c', letsencrypt: { ...NO_LE, cachefile: '/x' } })), /cannot specify both certificate and Let's Encrypt/);
    assert.throws(() => resolveTls(base({ letsencrypt: { ...NO_LE, hosts: ['a.example'] } })), /http\.tls\.letsencrypt\.cachefile: required/);
    assert.throws(() => resolveTls(base({ letsencrypt: { ...NO_LE, cachefile: '/x' } })), /http\.tls\.letsencrypt\.hosts/);
    const le = resolveTls(base({ letsencrypt: { ...NO_LE, cachefile: '/x', hosts: ['r.example'] }, minimumtls: 'tls1.3' }));
    assert.equal(le?.options.minVersion, 'TLSv1.3');
    assert.deepEqual(le?.letsencrypt?.hosts, ['r.example']);
  });

  it('reads the ALPN list of a ClientHello, and says when more bytes are needed', () => {
    // A minimal TLS 1.2 ClientHello: no session id, one suite, null compression, ALPN [acme-tls/1, h2].
    const alpn = Buffer.concat([Buffer.from([10, ...Buffer.from('acme-tls/1')]), Buffer.from([2, ...Buffer.from('h2')])]);
    const ext = Buffer.concat([Buffer.from([0, 16]), u16(alpn.length + 2), u16(alpn.length), alpn]);
    const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0]), u16(2), Buffer.from([0x13, 0x01]), Buffer.from([1, 0]), u16(ext.length), ext]);
    const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 255]), body]);
    const rec = Buffer.concat([Buffer.from([0x16, 3, 1]), u16(hs.length), hs]);
    assert.deepEqual(clientHelloALPN(rec), ['acme-tls/1', 'h2']);
    assert.equal(clientHelloALPN(rec.subarray(0, 20)), null);
    assert.deepEqual(clientHelloALPN(Buffer.from('GET / HTTP/1.1\r\n')), []);
  });
});

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
