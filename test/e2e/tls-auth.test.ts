// TLS and basic auth together, as the seeds set a registry up: `wharf serve` with http.tls (a certificate
// from a private CA) and auth.htpasswd. skopeo and podman log in trusting the CA through --cert-dir and
// push/pull with the credentials; the same with mutual TLS (client.cert/client.key in the cert dir).
// The start-up warning about basic auth without TLS is printed only when TLS is off.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, freePort, liveChildren, makeTinyImage, podman, readOciImage, requireTools, run, runExpectFailure, skopeo, sleep, tempDir, type OciImage } from './harness.js';
import { certDir, makePki, type Pki } from './tls-certs.js';

const WARNING = /auth\.htpasswd without TLS/;

interface Wharf {
  host: string;
  log(): string;
  stop(): Promise<void>;
}

/** `wharf serve` on a config with auth.htpasswd and the given `http.tls` lines; ready once it logs that it listens. */
async function serve(work: string, htpasswd: string, tlsLines: string[]): Promise<Wharf> {
  const port = await freePort();
  const config = path.join(work, `config-${port}.yml`);
  fs.writeFileSync(config, [
    'version: 0.1',
    'log: {level: info, formatter: json}',
    'storage:',
    '  inmemory: {}',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...tlsLines,
    'auth:',
    '  htpasswd:',
    '    realm: tls-realm',
    `    path: ${htpasswd}`,
    '',
  ].join('\n'));
  const logPath = path.join(work, `wharf-${port}.log`);
  const fd = fs.openSync(logPath, 'w');
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'serve', config], { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  liveChildren.add(child);
  let exited = false;
  const gone = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), liveChildren.delete(child), resolve())));
  const log = () => fs.readFileSync(logPath, 'utf8');
  for (let i = 0; !log().includes('listening on'); i++) {
    if (exited || i > 200) throw new Error(`wharf did not start:\n${log()}`);
    await sleep(100);
  }
  return {
    host: `127.0.0.1:${port}`,
    log,
    stop: async () => {
      if (!exited) child.kill('SIGTERM');
      await gone;
    },
  };
}

describe('TLS with htpasswd: real clients log in through --cert-dir', { timeout: 120_000 }, () => {
  let work: string;
  let pki: Pki;
  let img: OciImage;
  let htpasswd: string;
  let trust: string;
  let withClient: string;
  const servers: Wharf[] = [];

  before(async () => {
    requireTools('skopeo', 'podman', 'umoci', 'openssl');
    work = tempDir('tls-auth');
    [pki, img] = await Promise.all([makePki(work), makeTinyImage(path.join(work, 'src'), 'v1', 1)]);
    htpasswd = path.join(work, 'htpasswd');
    await run(process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'htpasswd', htpasswd, 'alice'], { input: 'alice-pw\n' });
    trust = certDir(path.join(work, 'certs-ca'), pki.ca);
    withClient = certDir(path.join(work, 'certs-client'), pki.ca, { cert: pki.clientCert, key: pki.clientKey });
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  test('the basic-auth-without-TLS warning: absent with http.tls, printed without it', async () => {
    const [secure, clear] = await Promise.all([
      serve(work, htpasswd, ['  tls:', `    certificate: ${pki.serverCert}`, `    key: ${pki.serverKey}`]),
      serve(work, htpasswd, []),
    ]);
    servers.push(secure, clear);
    assert.match(secure.log(), /TLS on/);
    assert.doesNotMatch(secure.log(), WARNING);
    assert.match(clear.log(), WARNING);
  });

  test('TLS: skopeo login/copy and podman login/push/pull with credentials, trusting the CA from --cert-dir', async () => {
    const reg = await serve(work, htpasswd, ['  tls:', `    certificate: ${pki.serverCert}`, `    key: ${pki.serverKey}`]);
    servers.push(reg);
    const ref = `${reg.host}/tls-auth/app:v1`;
    const authfile = path.join(work, 'skopeo-tls.json');
    const bad = await runExpectFailure('skopeo', ['login', '--cert-dir', trust, '--authfile', path.join(work, 'bad.json'), '-u', 'alice', '--password-stdin', reg.host], { input: 'wrong\n' });
    assert.match(bad.stderr, /unauthorized|invalid username\/password|authentication required/i);
    const login = await skopeo(['login', '--cert-dir', trust, '--authfile', authfile, '-u', 'alice', '--password-stdin', reg.host], { input: 'alice-pw\n' });
    assert.match(login.stdout, /Login Succeeded/i);
    // Logged in but not trusting the CA: refused on the certificate, not on credentials.
    const untrusted = await runExpectFailure('skopeo', ['--insecure-policy', 'copy', '--retry-times', '0', '--dest-authfile', authfile, img.ref, `docker://${ref}`]);
    assert.match(untrusted.stderr, /certificate/i);
    const anon = await runExpectFailure('skopeo', ['--insecure-policy', 'copy', '--retry-times', '0', '--dest-cert-dir', trust, img.ref, `docker://${ref}`]);
    assert.match(anon.stderr, /unauthorized|authentication required/i);
    await skopeo(['copy', '--retry-times', '0', '--dest-cert-dir', trust, '--dest-authfile', authfile, img.ref, `docker://${ref}`]);
    const out = path.join(work, 'pulled-tls');
    await skopeo(['copy', '--retry-times', '0', '--src-cert-dir', trust, '--src-creds', 'alice:alice-pw', `docker://${ref}`, `oci:${out}:v1`]);
    assert.equal(readOciImage(out, 'v1').digest, img.digest);

    const store = tempDir('tls-auth-podman');
    const pAuth = path.join(work, 'podman-tls.json');
    await podman(store, ['login', '--cert-dir', trust, '--authfile', pAuth, '-u', 'alice', '--password-stdin', reg.host], { input: 'alice-pw\n' });
    await podman(store, ['pull', '-q', '--cert-dir', trust, '--authfile', pAuth, ref]);
    const digestFile = path.join(work, 'podman-tls.digest');
    await podman(store, ['push', '-q', '--cert-dir', trust, '--authfile', pAuth, '--digestfile', digestFile, ref, `docker://${reg.host}/tls-auth/podman:v1`]);
    const pushed = await skopeo(['inspect', '--cert-dir', trust, '--creds', 'alice:alice-pw', '--format', '{{.Digest}}', `docker://${reg.host}/tls-auth/podman:v1`]);
    assert.equal(pushed.stdout.trim(), fs.readFileSync(digestFile, 'utf8').trim());
    assert.doesNotMatch(reg.log(), /alice-pw/, 'a password reached the server log');
  });

  test('mutual TLS + htpasswd: login and push/pull need both the client certificate and the password', async () => {
    const reg = await serve(work, htpasswd, ['  tls:', `    certificate: ${pki.serverCert}`, `    key: ${pki.serverKey}`, '    clientcas:', `      - ${pki.clientCA}`]);
    servers.push(reg);
    assert.match(reg.log(), /mutual TLS/);
    const ref = `${reg.host}/mtls-auth/app:v1`;
    // The right password without a client certificate: the handshake fails before any credentials.
    const noCert = await runExpectFailure('skopeo', ['login', '--cert-dir', trust, '--authfile', path.join(work, 'nocert.json'), '-u', 'alice', '--password-stdin', reg.host], { input: 'alice-pw\n' });
    assert.doesNotMatch(noCert.stderr, /unauthorized/i);
    // A client certificate without credentials: the registry asks for them.
    const anon = await runExpectFailure('skopeo', ['--insecure-policy', 'copy', '--retry-times', '0', '--dest-cert-dir', withClient, img.ref, `docker://${ref}`]);
    assert.match(anon.stderr, /unauthorized|authentication required/i);

    const authfile = path.join(work, 'skopeo-mtls.json');
    await skopeo(['login', '--cert-dir', withClient, '--authfile', authfile, '-u', 'alice', '--password-stdin', reg.host], { input: 'alice-pw\n' });
    await skopeo(['copy', '--retry-times', '0', '--dest-cert-dir', withClient, '--dest-authfile', authfile, img.ref, `docker://${ref}`]);
    const out = path.join(work, 'pulled-mtls');
    await skopeo(['copy', '--retry-times', '0', '--src-cert-dir', withClient, '--src-creds', 'alice:alice-pw', `docker://${ref}`, `oci:${out}:v1`]);
    assert.equal(readOciImage(out, 'v1').digest, img.digest);

    const store = tempDir('mtls-auth-podman');
    const pAuth = path.join(work, 'podman-mtls.json');
    await podman(store, ['login', '--cert-dir', withClient, '--authfile', pAuth, '-u', 'alice', '--password-stdin', reg.host], { input: 'alice-pw\n' });
    await podman(store, ['pull', '-q', '--cert-dir', withClient, '--authfile', pAuth, ref]);
    const digestFile = path.join(work, 'podman-mtls.digest');
    await podman(store, ['push', '-q', '--cert-dir', withClient, '--authfile', pAuth, '--digestfile', digestFile, ref, `docker://${reg.host}/mtls-auth/podman:v1`]);
    const pushed = await skopeo(['inspect', '--cert-dir', withClient, '--creds', 'alice:alice-pw', '--format', '{{.Digest}}', `docker://${reg.host}/mtls-auth/podman:v1`]);
    assert.equal(pushed.stdout.trim(), fs.readFileSync(digestFile, 'utf8').trim());
  });
});
