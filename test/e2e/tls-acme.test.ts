// http.tls.letsencrypt against Pebble (Debian's `pebble`, the ACME test CA), started here: Wharf
// obtains a certificate through TLS-ALPN-01 on its own port (Pebble really connects back and checks
// the challenge), serves it, keeps it in the cache file and reuses it after a restart with Pebble gone.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
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
    const pebbleConfig = path.join(work, 'pebble.json');
    fs.writeFileSync(pebbleConfig, JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: pki.serverCert,
        privateKey: pki.serverKey,
        httpPort: 1, // unused: only TLS-ALPN-01 is offered by Wharf
        tlsPort: port, // validation connects to Wharf's own port
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }));
    pebble = startProc('pebble', ['-config', pebbleConfig], { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' }, path.join(work, 'pebble.log'));
    await waitFor('pebble', async () => ((await run('curl', ['-sf', '--cacert', pki.ca, `https://127.0.0.1:${acmePort}/dir`], { allowFail: true })).code === 0 ? true : undefined), 20_000, () => pebble!.log());
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
