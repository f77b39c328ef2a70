// http.tls as a user sees it: curl and openssl s_client against Wharf over TLS (HTTP/1.1 and HTTP/2),
// mutual TLS, minimum versions, cipher suites, a 20 MB blob through HTTP/2, h2c, and real clients
// (skopeo, podman) trusting a private CA through their cert dirs.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startRegistry, type StartedRegistry } from '../../src/cli/start.js';
import type { TlsSettings } from '../../src/server/tls/options.js';
import { makeSettings } from '../server/helpers.js';
import { makeTinyImage, podman, requireTools, ROOT, run, skopeo, tempDir, type OciImage, type RunResult } from './harness.js';
import { certDir, makePki, type Pki } from './tls-certs.js';

const NO_LE = { cachefile: '', email: '', hosts: [], directoryurl: '' };

function tlsSettings(pki: Pki, extra: Partial<TlsSettings> = {}): TlsSettings {
  return { certificate: pki.serverCert, key: pki.serverKey, clientcas: [], ciphersuites: [], letsencrypt: NO_LE, ...extra };
}

async function startTls(tls: TlsSettings | undefined, http: { http2Disabled?: boolean; h2c?: boolean } = {}): Promise<StartedRegistry> {
  const settings = makeSettings({ inmemory: true });
  settings.http = { ...settings.http, tls, ...http };
  return startRegistry(settings);
}

function curl(args: string[]): Promise<RunResult> {
  return run('curl', ['-sS', '--max-time', '20', ...args], { allowFail: true });
}

/** `openssl s_client` to 127.0.0.1:PORT; stdout+stderr, exit code, and the parsed session facts. */
async function sClient(port: number, args: string[]): Promise<{ ok: boolean; out: string; protocol?: string; cipher?: string; alpn?: string }> {
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args], { allowFail: true, input: '' });
  const out = `${r.stdout}\n${r.stderr}`;
  const cipher = /Cipher is (\S+)/.exec(out)?.[1];
  const ok = r.code === 0 && cipher !== undefined && cipher !== '(NONE)';
  return { ok, out, protocol: /New, (\S+), Cipher is/.exec(out)?.[1], cipher, alpn: /ALPN protocol: (\S+)/.exec(out)?.[1] };
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

describe('TLS', { timeout: 120_000 }, () => {
  let pki: Pki;
  let work: string;
  const servers: StartedRegistry[] = [];
  const start = async (tls: TlsSettings | undefined, http: { http2Disabled?: boolean; h2c?: boolean } = {}) => {
    const s = await startTls(tls, http);
    servers.push(s);
    return s;
  };

  before(async () => {
    requireTools('curl', 'openssl');
    work = tempDir('tls');
    pki = await makePki(work);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  test('curl --cacert: GET /v2/ over HTTP/2 by default and over HTTP/1.1; HEAD; https URLs in Location', async () => {
    const reg = await start(tlsSettings(pki));
    assert.match(reg.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    for (const [flag, version] of [['--http2', '2'], ['--http1.1', '1.1']] as const) {
      const r = await curl(['--cacert', pki.ca, flag, '-D', '-', '-w', '\n%{http_version}', `${reg.url}/v2/`]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      assert.equal(lines.at(-1), version, `negotiated HTTP version with ${flag}`);
      assert.match(r.stdout, /^HTTP\/[\d.]+ 200/);
      assert.match(r.stdout, /docker-distribution-api-version: registry\/2\.0/i);
      if (version === '2') assert.doesNotMatch(r.stdout, /^(connection|keep-alive|transfer-encoding):/im, 'HTTP/2 forbids connection-specific headers');
      assert.equal(lines.at(-2), '{}');
    }
    const head = await curl(['--cacert', pki.ca, '--http2', '-I', `https://localhost:${reg.port}/v2/`]);
    assert.match(head.stdout, /^HTTP\/2 200/);
    assert.match(head.stdout, /content-length: 2/i);
    // An error answer on HTTP/2 (the path a Connection: close would take on HTTP/1.1).
    const miss = await curl(['--cacert', pki.ca, '--http2', '-D', '-', `${reg.url}/v2/none/manifests/x`]);
    assert.match(miss.stdout, /^HTTP\/2 404/);
    assert.match(miss.stdout, /MANIFEST_UNKNOWN/);
    const upload = await curl(['--cacert', pki.ca, '--http2', '-D', '-', '-X', 'POST', `https://localhost:${reg.port}/v2/a/blobs/uploads/`]);
    assert.match(upload.stdout, new RegExp(`location: https://localhost:${reg.port}/v2/a/blobs/uploads/`, 'i'));
    // An untrusted certificate is refused by curl.
    const untrusted = await curl([`${reg.url}/v2/`]);
    assert.notEqual(untrusted.code, 0);
  });

  test('openssl s_client: the chain verifies, TLS 1.3, ALPN h2 (or http/1.1 when http.http2.disabled)', async () => {
    const reg = await start(tlsSettings(pki));
    const s = await sClient(reg.port, ['-CAfile', pki.ca, '-verify_return_error', '-alpn', 'h2,http/1.1']);
    assert.ok(s.ok, s.out);
    assert.match(s.out, /Verify return code: 0 \(ok\)/);
    assert.equal(s.protocol, 'TLSv1.3');
    assert.equal(s.alpn, 'h2');
    const h1only = await start(tlsSettings(pki), { http2Disabled: true });
    const s1 = await sClient(h1only.port, ['-CAfile', pki.ca, '-alpn', 'h2,http/1.1']);
    assert.ok(s1.ok, s1.out);
    assert.equal(s1.alpn, 'http/1.1');
    const r = await curl(['--cacert', pki.ca, '--http2', '-w', '%{http_version}', '-o', '/dev/null', `${h1only.url}/v2/`]);
    assert.equal(r.stdout, '1.1');
  });

  test('mutual TLS: no client certificate or one from another CA cannot connect; a good one gets 200', async () => {
    const reg = await start(tlsSettings(pki, { clientcas: [pki.clientCA] }));
    const url = `${reg.url}/v2/`;
    const none = await curl(['--cacert', pki.ca, '-o', '/dev/null', '-w', '%{http_code}', url]);
    assert.notEqual(none.code, 0, 'no client certificate must fail');
    assert.notEqual(none.stdout, '200');
    const rogue = await curl(['--cacert', pki.ca, '--cert', pki.rogueCert, '--key', pki.rogueKey, '-o', '/dev/null', '-w', '%{http_code}', url]);
    assert.notEqual(rogue.code, 0, 'a certificate from an unknown CA must fail');
    assert.notEqual(rogue.stdout, '200');
    const good = await curl(['--cacert', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey, '-w', '%{http_code}', '-o', '/dev/null', url]);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stdout, '200');
    // In TLS 1.2 the refusal is inside the handshake itself.
    const s = await sClient(reg.port, ['-tls1_2', '-CAfile', pki.ca]);
    assert.ok(!s.ok, s.out);
    assert.match(s.out, /alert|handshake failure|certificate required/i);
    // The server keeps serving.
    assert.equal((await curl(['--cacert', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey, '-o', '/dev/null', '-w', '%{http_code}', url])).stdout, '200');
  });

  test('minimumtls: the default (tls1.2) refuses TLS 1.1; tls1.3 refuses TLS 1.2', async () => {
    const def = await start(tlsSettings(pki));
    const legacy = ['-cipher', 'DEFAULT@SECLEVEL=0'];
    assert.ok(!(await sClient(def.port, ['-tls1_1', ...legacy])).ok, 'TLS 1.1 client against the default minimum');
    const v12 = await sClient(def.port, ['-tls1_2']);
    assert.ok(v12.ok, v12.out);
    assert.equal(v12.protocol, 'TLSv1.2');
    const only13 = await start(tlsSettings(pki, { minimumtls: 'tls1.3' }));
    const refused = await sClient(only13.port, ['-tls1_2']);
    assert.ok(!refused.ok, refused.out);
    assert.match(refused.out, /protocol version/);
    const v13 = await sClient(only13.port, ['-tls1_3']);
    assert.ok(v13.ok, v13.out);
    assert.equal(v13.protocol, 'TLSv1.3');
    // (Distribution's default suites are all TLS 1.2 AEAD suites: older clients also need an older suite.)
    const old = await start(tlsSettings(pki, { minimumtls: 'tls1.0', ciphersuites: ['TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA'] }));
    const v11 = await sClient(old.port, ['-tls1_1', ...legacy]);
    assert.ok(v11.ok, `minimumtls tls1.0 lets a TLS 1.1 client in\n${v11.out}`);
  });

  test('ciphersuites: only the configured suites can be negotiated (TLS 1.2 and TLS 1.3 names)', async () => {
    const reg = await start(tlsSettings(pki, { ciphersuites: ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384'] }));
    const good = await sClient(reg.port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256']);
    assert.ok(good.ok, good.out);
    assert.equal(good.cipher, 'ECDHE-RSA-AES128-GCM-SHA256');
    const other = await sClient(reg.port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305']);
    assert.ok(!other.ok, other.out);
    const t13 = await sClient(reg.port, ['-tls1_3', '-ciphersuites', 'TLS_AES_256_GCM_SHA384']);
    assert.ok(t13.ok, t13.out);
    assert.equal(t13.cipher, 'TLS_AES_256_GCM_SHA384');
    const t13other = await sClient(reg.port, ['-tls1_3', '-ciphersuites', 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256']);
    assert.ok(!t13other.ok, t13other.out);
    // Distribution's default list: no CBC, no RSA key exchange.
    const def = await start(tlsSettings(pki));
    assert.ok(!(await sClient(def.port, ['-tls1_2', '-cipher', 'AES128-SHA'])).ok);
    assert.ok((await sClient(def.port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES256-GCM-SHA384'])).ok);
  });

  test('wharf serve stops at start-up on an unknown suite, a missing key file or certificate plus letsencrypt', async () => {
    const cases: Array<[string, RegExp]> = [
      [`    ciphersuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_BOGUS_SUITE]\n`, /http\.tls\.ciphersuites: unknown TLS cipher suite "TLS_BOGUS_SUITE"/],
      [`    minimumtls: tls1.2\n    letsencrypt:\n      cachefile: ${work}/le.json\n      hosts: [localhost]\n`, /cannot specify both certificate and Let's Encrypt/],
    ];
    for (const [extra, expected] of cases) {
      const cfg = path.join(work, 'bad.yml');
      fs.writeFileSync(cfg, `version: 0.1\nstorage:\n  inmemory: {}\nhttp:\n  addr: 127.0.0.1:0\n  tls:\n    certificate: ${pki.serverCert}\n    key: ${pki.serverKey}\n${extra}`);
      const r = await run(process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'serve', cfg], { allowFail: true, timeoutMs: 20_000 });
      assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, expected);
    }
    const cfg = path.join(work, 'nokey.yml');
    fs.writeFileSync(cfg, `version: 0.1\nstorage:\n  inmemory: {}\nhttp:\n  addr: 127.0.0.1:0\n  tls:\n    certificate: ${pki.serverCert}\n    key: ${work}/missing.key\n`);
    const r = await run(process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'serve', cfg], { allowFail: true, timeoutMs: 20_000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /http\.tls\.key: cannot read .*missing\.key/);
  });

  test('a 20 MB blob streams up (PATCH) and down over HTTP/2 with its digest intact', async () => {
    const reg = await start(tlsSettings(pki));
    const blob = randomBytes(20 * 1024 * 1024);
    const digest = sha256(blob);
    const session = http2.connect(reg.url, { ca: fs.readFileSync(pki.ca) });
    try {
      const req = (headers: http2.OutgoingHttpHeaders, body?: Buffer) =>
        new Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
          const s = session.request(headers, { endStream: body === undefined });
          const parts: Buffer[] = [];
          let h: http2.IncomingHttpHeaders = {};
          s.on('response', (x) => (h = x));
          s.on('data', (c: Buffer) => parts.push(c));
          s.on('end', () => resolve({ headers: h, body: Buffer.concat(parts) }));
          s.on('error', reject);
          if (body !== undefined) {
            // Stream it in 1 MiB writes, as a client sending a layer would.
            let off = 0;
            const pump = () => {
              while (off < body.length) {
                const next = body.subarray(off, off + 1024 * 1024);
                off += next.length;
                if (!s.write(next)) return void s.once('drain', pump);
              }
              s.end();
            };
            pump();
          }
        });
      const post = await req({ ':method': 'POST', ':path': '/v2/big/blob/blobs/uploads/' });
      assert.equal(post.headers[':status'], 202);
      const loc = new URL(String(post.headers.location));
      const patch = await req({ ':method': 'PATCH', ':path': loc.pathname + loc.search, 'content-type': 'application/octet-stream' }, blob);
      assert.equal(patch.headers[':status'], 202, patch.body.toString());
      assert.equal(patch.headers.range, `0-${blob.length - 1}`);
      const loc2 = new URL(String(patch.headers.location));
      loc2.searchParams.set('digest', digest);
      const put = await req({ ':method': 'PUT', ':path': loc2.pathname + loc2.search, 'content-length': '0' });
      assert.equal(put.headers[':status'], 201, put.body.toString());
      const head = await req({ ':method': 'HEAD', ':path': `/v2/big/blob/blobs/${digest}` });
      assert.equal(head.headers[':status'], 200);
      assert.equal(head.headers['content-length'], String(blob.length));
      assert.equal(head.body.length, 0);
      const get = await req({ ':method': 'GET', ':path': `/v2/big/blob/blobs/${digest}` });
      assert.equal(get.headers[':status'], 200);
      assert.equal(get.body.length, blob.length);
      assert.equal(sha256(get.body), digest);
      assert.equal(get.headers['docker-content-digest'], digest);
    } finally {
      session.close();
    }
  });

  test('HTTP/2: an error answered while the client still sends its body (413 manifest, 404 upload) ends the stream; the connection goes on', async () => {
    const reg = await start(tlsSettings(pki));
    const session = http2.connect(reg.url, { ca: fs.readFileSync(pki.ca) });
    try {
      await new Promise<void>((resolve, reject) => session.once('connect', () => resolve()).once('error', reject));
      assert.equal(session.alpnProtocol, 'h2');
      /** Sends `size` bytes in 1 MiB writes for as long as the server lets the stream live. */
      const send = (headers: http2.OutgoingHttpHeaders, size: number) =>
        new Promise<{ status: unknown; body: string; rstCode: number | undefined; sent: number; closeMs: number }>((resolve, reject) => {
          const started = Date.now();
          const s = session.request(headers);
          const parts: Buffer[] = [];
          let status: unknown;
          let sent = 0;
          s.on('response', (h) => (status = h[':status']));
          s.on('data', (c: Buffer) => parts.push(c));
          s.on('error', reject);
          // Without the server ending the stream, the client would wait on flow control forever.
          const stuck = setTimeout(() => reject(new Error(`stream still open after 10 s (status ${String(status)}, ${sent} bytes sent)`)), 10_000);
          s.on('close', () => {
            clearTimeout(stuck);
            resolve({ status, body: Buffer.concat(parts).toString(), rstCode: s.rstCode, sent, closeMs: Date.now() - started });
          });
          const chunk = Buffer.alloc(1024 * 1024, 0x7b);
          const pump = () => {
            while (sent < size && !s.closed && !s.destroyed) {
              sent += chunk.length;
              if (!s.write(chunk)) return void s.once('drain', pump);
            }
            if (!s.closed && !s.destroyed) s.end();
          };
          pump();
        });
      const big = 64 * 1024 * 1024;
      for (let round = 0; round < 2; round++) {
        const manifest = await send({ ':method': 'PUT', ':path': '/v2/h2/err/manifests/v1', 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, big);
        assert.equal(manifest.status, 413, manifest.body);
        assert.equal(JSON.parse(manifest.body).errors[0].code, 'MANIFEST_INVALID');
        assert.equal(manifest.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'the server asks the client to stop sending, without error');
        assert.ok(manifest.sent < big, `the client stopped early (${manifest.sent} of ${big} bytes)`);
        const patch = await send({ ':method': 'PATCH', ':path': '/v2/h2/err/blobs/uploads/00000000-0000-4000-8000-000000000000', 'content-type': 'application/octet-stream' }, big);
        assert.equal(patch.status, 404, patch.body);
        assert.equal(JSON.parse(patch.body).errors[0].code, 'BLOB_UPLOAD_UNKNOWN');
        assert.equal(patch.rstCode, http2.constants.NGHTTP2_NO_ERROR);
        assert.ok(patch.sent < big, `the client stopped early (${patch.sent} of ${big} bytes)`);
      }
      // The same connection still serves: a GET and a 3 MiB monolithic upload.
      const base = await send({ ':method': 'GET', ':path': '/v2/' }, 0);
      assert.equal(base.status, 200);
      assert.equal(base.body, '{}');
      const blob = randomBytes(3 * 1024 * 1024);
      const up = await new Promise<number>((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': `/v2/h2/err/blobs/uploads/?digest=${sha256(blob)}`, 'content-type': 'application/octet-stream' });
        s.on('response', (h) => resolve(Number(h[':status'])));
        s.on('error', reject);
        s.resume();
        s.end(blob);
      });
      assert.equal(up, 201);
      assert.ok(!session.closed && !session.destroyed, 'the connection is still open');
    } finally {
      session.close();
    }
  });

  test('h2c: cleartext HTTP/2 with prior knowledge and HTTP/1.1 on the same port', async () => {
    const reg = await start(undefined, { h2c: true });
    assert.match(reg.url, /^http:/);
    const h2 = await curl(['--http2-prior-knowledge', '-w', '\n%{http_version}', `${reg.url}/v2/`]);
    assert.equal(h2.stdout, '{}\n2', h2.stderr);
    const h1 = await curl(['-w', '\n%{http_version}', `${reg.url}/v2/`, `${reg.url}/v2/`]);
    assert.equal(h1.stdout, '{}\n1.1{}\n1.1', h1.stderr);
    const blob = randomBytes(3 * 1024 * 1024);
    const file = path.join(work, 'h2c.bin');
    fs.writeFileSync(file, blob);
    const d = sha256(blob);
    const put = await curl(['--http2-prior-knowledge', '-X', 'POST', '--data-binary', `@${file}`, '-H', 'Content-Type: application/octet-stream',
      '-o', '/dev/null', '-w', '%{http_code}', `${reg.url}/v2/h2c/blobs/uploads/?digest=${d}`]);
    assert.equal(put.stdout, '201', put.stderr);
    const got = await curl(['--http2-prior-knowledge', '-o', path.join(work, 'h2c.out'), `${reg.url}/v2/h2c/blobs/${d}`]);
    assert.equal(got.code, 0);
    assert.equal(sha256(fs.readFileSync(path.join(work, 'h2c.out'))), d);
  });
});

describe('TLS with real clients', { timeout: 180_000 }, () => {
  let pki: Pki;
  let work: string;
  let img: OciImage;
  let plain: StartedRegistry;
  let mutual: StartedRegistry;

  before(async () => {
    requireTools('skopeo', 'podman', 'umoci', 'openssl');
    work = tempDir('tls-clients');
    pki = await makePki(work);
    img = await makeTinyImage(path.join(work, 'src'), 'v1', 2);
    plain = await startTls(tlsSettings(pki));
    mutual = await startTls(tlsSettings(pki, { clientcas: [pki.clientCA] }));
  });
  after(async () => {
    await plain?.close();
    await mutual?.close();
  });

  test('skopeo copy pushes and pulls over TLS trusting the CA from --dest-cert-dir/--src-cert-dir (and with a client certificate)', async () => {
    const trust = certDir(path.join(work, 'certs-ca'), pki.ca);
    const ref = `127.0.0.1:${plain.port}/tls/skopeo:v1`;
    await skopeo(['copy', '--retry-times', '0', '--dest-cert-dir', trust, img.ref, `docker://${ref}`]);
    const out = path.join(work, 'pulled');
    await skopeo(['copy', '--retry-times', '0', '--src-cert-dir', trust, `docker://${ref}`, `oci:${out}:v1`]);
    const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8'));
    assert.equal(index.manifests[0].digest, img.digest);
    // Without trusting the CA, skopeo refuses the server.
    const untrusted = await skopeo(['inspect', '--retry-times', '0', `docker://${ref}`], { allowFail: true });
    assert.notEqual(untrusted.code, 0);
    assert.match(untrusted.stderr, /certificate/i);

    const withClient = certDir(path.join(work, 'certs-client'), pki.ca, { cert: pki.clientCert, key: pki.clientKey });
    const mref = `127.0.0.1:${mutual.port}/tls/mutual:v1`;
    const refused = await skopeo(['copy', '--retry-times', '0', '--dest-cert-dir', trust, img.ref, `docker://${mref}`], { allowFail: true });
    assert.notEqual(refused.code, 0, 'a push without a client certificate must fail');
    await skopeo(['copy', '--retry-times', '0', '--dest-cert-dir', withClient, img.ref, `docker://${mref}`]);
    const r = await skopeo(['inspect', '--cert-dir', withClient, '--format', '{{.Digest}}', `docker://${mref}`]);
    assert.equal(r.stdout.trim(), img.digest);
  });

  test('podman pull and push with --cert-dir (mutual TLS)', async () => {
    const store = tempDir('tls-podman');
    const withClient = certDir(path.join(work, 'podman-certs'), pki.ca, { cert: pki.clientCert, key: pki.clientKey });
    const src = `127.0.0.1:${mutual.port}/tls/podman-src:v1`;
    await skopeo(['copy', '--retry-times', '0', '--dest-cert-dir', withClient, img.ref, `docker://${src}`]);
    await podman(store, ['pull', '-q', '--cert-dir', withClient, src]);
    const dst = `127.0.0.1:${mutual.port}/tls/podman-dst:v1`;
    await podman(store, ['push', '-q', '--cert-dir', withClient, src, `docker://${dst}`]);
    const r = await curl(['--cacert', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey, `https://127.0.0.1:${mutual.port}/v2/tls/podman-dst/tags/list`]);
    assert.deepEqual(JSON.parse(r.stdout), { name: 'tls/podman-dst', tags: ['v1'] });
  });
});
