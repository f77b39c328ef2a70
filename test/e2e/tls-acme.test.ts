// http.tls.letsencrypt against Pebble (Debian's `pebble`, the ACME test CA), started here: Wharf
// obtains a certificate through TLS-ALPN-01 on its own port (Pebble really connects back and checks
// the challenge), serves it, keeps it in the cache file and reuses it after a restart with Pebble gone.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import { Agent as HttpsAgent } from 'node:https';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import * as tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import acme from 'acme-client';
import { makeLogger } from '../../src/cli/logging.js';
import { startRegistry, type StartedRegistry } from '../../src/cli/start.js';
import { makeSettings } from '../server/helpers.js';
import { ROOT, freePort, liveChildren, requireTools, run, sleep, tempDir } from './harness.js';
import { makePki, type Pki } from './tls-certs.js';

interface Proc {
  child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

function startProc(cmd: string, args: string[], env: Record<string, string>, logFile: string): Proc {
  const out = fs.openSync(logFile, 'w');
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  liveChildren.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    log: () => fs.readFileSync(logFile, 'utf8'),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      liveChildren.delete(child);
    },
  };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms: number, log: () => string): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n--- log ---\n${log()}`);
    await sleep(200);
  }
}

/** Pebble serving ACME on ACMEPORT (TLS with the test CA), validating TLS-ALPN-01 on Wharf's PORT. */
async function startPebble(work: string, pki: Pki, ports: { port: number; acmePort: number; mgmtPort: number }): Promise<Proc> {
  const pebbleConfig = path.join(work, `pebble-${ports.acmePort}.json`);
  fs.writeFileSync(pebbleConfig, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${ports.acmePort}`,
      managementListenAddress: `127.0.0.1:${ports.mgmtPort}`,
      certificate: pki.serverCert,
      privateKey: pki.serverKey,
      httpPort: 1, // unused: only TLS-ALPN-01 is offered by Wharf
      tlsPort: ports.port, // validation connects to Wharf's own port
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  }));
  const pebble = startProc('pebble', ['-config', pebbleConfig], { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' }, path.join(work, `pebble-${ports.acmePort}.log`));
  await waitFor('pebble', async () => ((await run('curl', ['-sf', '--cacert', pki.ca, `https://127.0.0.1:${ports.acmePort}/dir`], { allowFail: true })).code === 0 ? true : undefined), 20_000, () => pebble.log());
  return pebble;
}

/** The certificate a TLS client sees for SNI localhost, verified against `ca`. */
function peerCert(port: number, ca: string): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: ['http/1.1'] }, () => {
      const c = s.getPeerCertificate();
      s.end();
      resolve(c);
    });
    s.on('error', reject);
  });
}

describe("Let's Encrypt (ACME) against Pebble", { timeout: 90_000 }, () => {
  let pki: Pki;
  let work: string;
  let pebble: Proc | undefined;
  let wharf: Proc | undefined;
  let port: number;
  let acmePort: number;
  let mgmtPort: number;
  let config: string;
  const cachefile = () => path.join(work, 'letsencrypt.json');

  const startWharf = (n: number) =>
    startProc(process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'serve', config], { NODE_EXTRA_CA_CERTS: pki.ca }, path.join(work, `wharf-${n}.log`));

  before(async () => {
    requireTools('pebble', 'curl', 'openssl');
    work = tempDir('acme');
    pki = await makePki(work);
    [port, acmePort, mgmtPort] = await Promise.all([freePort(), freePort(), freePort()]);
    pebble = await startPebble(work, pki, { port, acmePort, mgmtPort });
    config = path.join(work, 'config.yml');
    fs.writeFileSync(config, [
      'version: 0.1',
      'log: {level: info, formatter: json}',
      'storage:',
      '  inmemory: {}',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '  tls:',
      '    letsencrypt:',
      `      cachefile: ${cachefile()}`,
      '      email: admin@example.com',
      '      hosts: [localhost]',
      `      directoryurl: https://127.0.0.1:${acmePort}/dir`,
      '',
    ].join('\n'));
  });
  after(async () => {
    await wharf?.stop();
    await pebble?.stop();
  });

  test('obtains a certificate, serves it to curl trusting Pebble\'s root, caches it and reuses it after a restart without Pebble', async () => {
    wharf = startWharf(1);
    const w1 = wharf;
    // Pebble's issuing root comes from its management interface (new on every Pebble start).
    const rootPem = (await run('curl', ['-sSf', '--cacert', pki.ca, `https://127.0.0.1:${mgmtPort}/roots/0`])).stdout;
    const root = path.join(work, 'pebble-root.pem');
    fs.writeFileSync(root, rootPem);
    await waitFor('the certificate', async () => (w1.log().includes('certificate obtained') ? true : undefined), 45_000, () => `${w1.log()}\n--- pebble ---\n${pebble!.log()}`);
    const r = await run('curl', ['-sS', '--cacert', root, '-w', '\n%{http_code} %{http_version}', `https://localhost:${port}/v2/`], { allowFail: true });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '{}\n200 2');
    const first = await peerCert(port, rootPem);
    assert.ok(first.subjectaltname?.includes('DNS:localhost'), first.subjectaltname);
    // Pebble validated for real (no PEBBLE_VA_ALWAYS_VALID): it connected back with ALPN acme-tls/1.
    assert.match(w1.log(), /answered a TLS-ALPN-01 validation/);
    assert.match(pebble!.log(), /set VALID by completed challenge/);

    const cache = JSON.parse(fs.readFileSync(cachefile(), 'utf8'));
    assert.ok(cache.accountKey && cache.accountUrl, 'the account is cached');
    assert.deepEqual(cache.certificate.hosts, ['localhost']);
    assert.equal((fs.statSync(cachefile()).mode & 0o077), 0, 'the cache file (private keys) is private');

    // Restart with Pebble stopped: the cached certificate is served, nothing is requested.
    await w1.stop();
    await pebble!.stop();
    wharf = startWharf(2);
    const w2 = wharf;
    const again = await waitFor('the restarted server', () => peerCert(port, rootPem), 20_000, () => w2.log());
    assert.equal(again.fingerprint256, first.fingerprint256, 'the same certificate after the restart');
    const r2 = await run('curl', ['-sS', '--cacert', root, '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${port}/v2/`], { allowFail: true });
    assert.equal(r2.stdout, '200', r2.stderr);
    assert.match(w2.log(), /using the cached certificate/);
    assert.doesNotMatch(w2.log(), /requesting a certificate/);
  });
});

/** The leaf certificate `openssl s_client` gets from 127.0.0.1:PORT sending no server name (SNI) at all. */
async function certWithoutSNI(port: number): Promise<X509Certificate> {
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-noservername'], { allowFail: true, input: '', timeoutMs: 20_000 });
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
  if (!pem) throw new Error(`no certificate without SNI (exit ${r.code})\n${r.stdout}\n${r.stderr}`);
  return new X509Certificate(pem);
}

describe("Let's Encrypt renewal without a restart (Pebble)", { timeout: 90_000 }, () => {
  let pki: Pki;
  let work: string;
  let pebble: Proc | undefined;
  let port: number;
  let mgmtPort: number;
  let acmePort: number;
  let logLines: string[];
  const servers: StartedRegistry[] = [];

  /** Wharf in this process (the renewal timing is an internal option, not a configuration key). */
  const startWharf = async (acmeTiming?: { renewBeforeMs: number; checkEveryMs: number }) => {
    const settings = makeSettings({ inmemory: true });
    settings.http = {
      ...settings.http,
      addr: `127.0.0.1:${port}`,
      tls: {
        certificate: '',
        key: '',
        clientcas: [],
        ciphersuites: [],
        letsencrypt: { cachefile: path.join(work, 'renew.json'), email: 'admin@example.com', hosts: ['localhost'], directoryurl: `https://127.0.0.1:${acmePort}/dir` },
      },
      acmeTiming,
    };
    const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => (logLines.push(chunk.toString()), cb()) });
    const reg = await startRegistry(settings, makeLogger({ ...settings.log, level: 'info' }, sink));
    servers.push(reg);
    return reg;
  };
  const log = () => logLines.join('');
  /** The cached chain: the leaf, then Pebble's intermediate. */
  const cachedChain = () =>
    (JSON.parse(fs.readFileSync(path.join(work, 'renew.json'), 'utf8')).certificate.cert as string)
      .split(/(?<=-----END CERTIFICATE-----)\s*/)
      .filter((pem) => pem.includes('BEGIN CERTIFICATE'))
      .map((pem) => new X509Certificate(pem));
  const cachedCert = () => cachedChain()[0]!;

  before(async () => {
    requireTools('pebble', 'curl', 'openssl');
    work = tempDir('acme-renew');
    logLines = [];
    pki = await makePki(work);
    [port, acmePort, mgmtPort] = await Promise.all([freePort(), freePort(), freePort()]);
    // acme-client talks to Pebble over HTTPS with the test CA's certificate.
    acme.axios.defaults.httpsAgent = new HttpsAgent({ ca: fs.readFileSync(pki.ca) });
    pebble = await startPebble(work, pki, { port, acmePort, mgmtPort });
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await pebble?.stop();
  });

  test('a cached certificate entering the renewal window is replaced while serving; clients without SNI get it too', async () => {
    // A first run obtains certificate A and caches it.
    const first = await startWharf();
    await waitFor('the first certificate', async () => (log().includes('certificate obtained') ? true : undefined), 45_000, () => `${log()}\n--- pebble ---\n${pebble!.log()}`);
    const root = (await run('curl', ['-sSf', '--cacert', pki.ca, `https://127.0.0.1:${mgmtPort}/roots/0`])).stdout;
    const a = cachedCert();
    await first.close();

    // Restart with a renewal window that A enters 4 s from now, checked twice a second.
    logLines = [];
    const renewBeforeMs = new Date(a.validTo).getTime() - Date.now() - 4_000;
    const reg = await startWharf({ renewBeforeMs, checkEveryMs: 500 });
    assert.match(log(), /using the cached certificate/);
    assert.equal((await peerCert(port, root)).fingerprint256, a.fingerprint256, 'A is served from the cache');
    const noSNI = await certWithoutSNI(port);
    assert.equal(noSNI.fingerprint256, a.fingerprint256, 'a client without SNI gets the Let\'s Encrypt certificate');
    assert.ok(noSNI.checkIssued(cachedChain()[1]!), 'issued by Pebble');

    // One HTTP/2 connection made before the swap keeps requesting through it; new connections keep coming.
    const session = http2.connect(reg.url.replace('127.0.0.1', 'localhost'), { ca: root });
    const failures: string[] = [];
    let requests = 0;
    let handshakes = 0;
    const get = () =>
      new Promise<void>((resolve) => {
        const s = session.request({ ':path': '/v2/' });
        let status: unknown;
        s.on('response', (h) => (status = h[':status']));
        s.on('error', (e) => failures.push(`h2: ${e.message}`));
        s.on('close', () => {
          requests++;
          if (status !== 200) failures.push(`h2 status ${String(status)}`);
          resolve();
        });
        s.resume();
      });
    let b: tls.PeerCertificate | undefined;
    const until = Date.now() + 30_000;
    while (!b && Date.now() < until) {
      await get();
      const seen = await peerCert(port, root).catch((e: Error) => (failures.push(`handshake: ${e.message}`), undefined));
      handshakes++;
      if (seen && seen.fingerprint256 !== a.fingerprint256) b = seen;
      else await sleep(100);
    }
    assert.ok(b, `no new certificate within 30 s\n${log()}\n--- pebble ---\n${pebble!.log()}`);
    assert.equal(cachedCert().fingerprint256, b.fingerprint256, 'the cache file holds the new certificate');
    assert.ok(b.subjectaltname?.includes('DNS:localhost'));
    assert.equal((await certWithoutSNI(port)).fingerprint256, b.fingerprint256, 'clients without SNI get the new certificate');
    await get();
    assert.deepEqual(failures, [], `${requests} requests and ${handshakes} handshakes during the swap`);
    assert.equal((session.socket as tls.TLSSocket).getPeerCertificate().fingerprint256, a.fingerprint256, 'the connection made before the swap stayed open');
    session.close();
    assert.match(log(), /letsencrypt: requesting a certificate/);
    assert.equal(log().match(/certificate obtained/g)?.length, 1, 'renewed once, in the running server');
  });
});
