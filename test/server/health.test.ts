// Health checks (the `health` section) against real targets: a file created and removed, a real
// HTTP server whose answers change, a TCP port that refuses then listens, a filesystem root that
// breaks, and Azurite (our own instance) stopped and started again. The API answers 503
// UNAVAILABLE while a check fails past its threshold and recovers by itself; /debug/health on the
// debug server lists the failures.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startRegistry, type RegistrySettings, type StartedRegistry } from '../../src/cli/start.js';
import type { HealthSettings } from '../../src/health/index.js';
import { startService } from '../storage/service-script.js';
import { assertError, makeSettings, request, type Res } from './helpers.js';

const UNAVAILABLE_BODY = { errors: [{ code: 'UNAVAILABLE', message: 'service unavailable', detail: 'health check failed: please see /debug/health' }] };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-health-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function health(h: Partial<HealthSettings>): HealthSettings {
  return { storagedriver: { enabled: false, interval: 0, threshold: 0 }, file: [], http: [], tcp: [], ...h };
}

interface Running {
  started: StartedRegistry;
  port: number;
  debug: { port: number };
}

async function start(h: HealthSettings, extra: Partial<RegistrySettings> = {}): Promise<Running> {
  const dir = fs.mkdtempSync(path.join(tmp, 'root-'));
  const started = await startRegistry({
    ...makeSettings({ dir }),
    debug: { addr: '127.0.0.1:0', prometheus: { enabled: false, path: '/metrics' } },
    health: h,
    ...extra,
  });
  return { started, port: started.port, debug: { port: started.debugPort! } };
}

/** Poll until `ok` holds (every 20 ms), or fail naming what was awaited and the last answer. */
async function until(probe: () => Promise<Res>, ok: (r: Res) => boolean, what: string, ms = 15_000): Promise<Res> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await probe();
    if (ok(r)) return r;
    if (Date.now() > deadline) assert.fail(`${what}: still ${r.status} ${r.text} after ${ms} ms`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

const healthOf = (r: Running) => () => request(r.debug, 'GET', '/debug/health');
const failing = (r: Running) => until(healthOf(r), (x) => x.status === 503, 'the check to fail');
const passing = (r: Running) => until(healthOf(r), (x) => x.status === 200, 'the check to pass');

async function assertApiUnavailable(r: Running): Promise<void> {
  for (const [method, p] of [['GET', '/v2/'], ['GET', '/v2/team/app/manifests/latest'], ['POST', '/v2/team/app/blobs/uploads/'], ['GET', '/not/a/route']]) {
    const res = await request(r, method!, p!);
    assertError(res, 503, 'UNAVAILABLE');
    assert.deepEqual(res.json(), UNAVAILABLE_BODY, `${method} ${p}`);
  }
}

describe('health checks', () => {
  it('file: fails while the file exists (API 503 on every path), passes again once it is removed', async () => {
    const flag = path.join(tmp, 'out-of-rotation');
    const r = await start(health({ file: [{ file: flag, interval: 100, threshold: 0 }] }));
    try {
      const ok = await passing(r);
      assert.deepEqual(ok.json(), {});
      assert.match(String(ok.headers['content-type']), /^application\/json/);
      assert.equal((await request(r, 'GET', '/v2/')).status, 200);
      fs.writeFileSync(flag, '');
      assert.deepEqual((await failing(r)).json(), { [flag]: 'file exists' });
      await assertApiUnavailable(r);
      fs.rmSync(flag);
      await passing(r);
      assert.equal((await request(r, 'GET', '/v2/')).status, 200);
      assert.equal((await request(r, 'GET', '/not/a/route')).status, 404);
    } finally {
      await r.started.close();
    }
  });

  it('http: HEAD with the configured headers; fails after `threshold` bad answers in a row, passes after one good one', async () => {
    let status = 200;
    const seen: { method: string; header: string | undefined; status: number }[] = [];
    const target = http.createServer((req, res) => {
      seen.push({ method: req.method!, header: req.headers['x-check'] as string | undefined, status });
      res.writeHead(status).end();
    });
    await new Promise<void>((res) => target.listen(0, '127.0.0.1', res));
    const uri = `http://127.0.0.1:${(target.address() as net.AddressInfo).port}/ready`;
    const r = await start(health({ http: [{ uri, headers: { 'X-Check': ['a', 'b'] }, statuscode: 200, timeout: 2000, interval: 300, threshold: 3 }] }));
    try {
      await until(async () => ({ status: seen.length }) as Res, (x) => x.status >= 1, 'a first check');
      assert.deepEqual(seen[0], { method: 'HEAD', header: 'a, b', status: 200 });
      await passing(r);
      status = 500;
      const flipped = seen.length;
      assert.deepEqual((await failing(r)).json(), { [uri]: 'downstream service returned unexpected status: 500' });
      const failures = seen.slice(flipped).filter((s) => s.status === 500).length;
      assert.ok(failures >= 3, `reported failing after ${failures} failed checks; threshold is 3`);
      await assertApiUnavailable(r);
      status = 200;
      const back = seen.length;
      await passing(r);
      const successes = seen.slice(back).filter((s) => s.status === 200).length;
      assert.ok(successes >= 1 && successes <= 2, `passing again after ${successes} good answers (one is enough)`);
      assert.equal((await request(r, 'GET', '/v2/')).status, 200);
    } finally {
      await r.started.close();
      target.close();
    }
  });

  it('http: a configured statuscode, redirects followed, and a timeout for a server that never answers', async () => {
    const target = http.createServer((req, res) => {
      if (req.url === '/moved') res.writeHead(302, { Location: '/empty' }).end();
      else if (req.url === '/empty') res.writeHead(204).end();
      else if (req.url === '/ok') res.writeHead(200).end();
      // '/hang': no answer
    });
    await new Promise<void>((res) => target.listen(0, '127.0.0.1', res));
    const base = `http://127.0.0.1:${(target.address() as net.AddressInfo).port}`;
    const check = (p: string, timeout = 2000) => ({ uri: `${base}${p}`, headers: {}, statuscode: 204, timeout, interval: 100, threshold: 0 });
    const r = await start(health({ http: [check('/moved'), check('/ok'), check('/hang', 200)] }));
    try {
      const res = await until(healthOf(r), (x) => Object.keys(x.json()).length === 2, 'two checks failing');
      assert.deepEqual(res.json(), {
        [`${base}/ok`]: 'downstream service returned unexpected status: 200',
        [`${base}/hang`]: `error while checking: ${base}/hang`,
      });
    } finally {
      await r.started.close();
      target.closeAllConnections();
      target.close();
    }
  });

  it('tcp: fails while nothing listens on the port, passes while something does', async () => {
    const probe = net.createServer();
    await new Promise<void>((res) => probe.listen(0, '127.0.0.1', res));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((res) => probe.close(() => res()));
    const addr = `127.0.0.1:${port}`;
    const r = await start(health({ tcp: [{ addr, timeout: 1000, interval: 100, threshold: 0 }] }));
    const listener = net.createServer((s) => s.destroy());
    try {
      assert.deepEqual((await failing(r)).json(), { [addr]: `connection to ${addr} failed` });
      await assertApiUnavailable(r);
      await new Promise<void>((res) => listener.listen(port, '127.0.0.1', res));
      await passing(r);
      await new Promise<void>((res) => listener.close(() => res()));
      await failing(r);
    } finally {
      await r.started.close();
      if (listener.listening) listener.close();
    }
  });

  it('storagedriver (filesystem): a missing root is healthy, a root that cannot be listed fails', async () => {
    const root = path.join(tmp, 'fs-root');
    const r = await start(health({ storagedriver: { enabled: true, interval: 100, threshold: 2 } }), {
      storage: { name: 'filesystem', options: { rootdirectory: root } },
    });
    try {
      assert.deepEqual((await passing(r)).json(), {});
      fs.symlinkSync(root, root); // a link to itself: every access fails with ELOOP
      const res = await failing(r);
      assert.deepEqual(Object.keys(res.json()), ['storagedriver_filesystem']);
      assert.match(res.json().storagedriver_filesystem, /ELOOP/);
      fs.unlinkSync(root);
      fs.mkdirSync(root);
      await passing(r);
    } finally {
      await r.started.close();
    }
  });

  it('storagedriver (azure): fails while Azurite is stopped, passes once it runs again', async () => {
    const stateDir = path.join(tmp, 'azurite');
    const probe = net.createServer();
    await new Promise<void>((res) => probe.listen(0, '127.0.0.1', res));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((res) => probe.close(() => res()));
    const env = { ...process.env, AZURITE_BLOB_PORT: String(port) };
    const script = (name: string) => path.resolve(import.meta.dirname, '../../../scripts/services', name);
    const { vars } = await startService('azurite-start.sh', { timeoutMs: 90_000, env: { ...env, WHARF_AZURITE_DIR: stateDir } });
    const options = { accountname: vars.AZURE_STORAGE_ACCOUNT, accountkey: vars.AZURE_STORAGE_KEY, container: 'health', serviceurl: vars.AZURE_BLOB_ENDPOINT };
    let r: Running | undefined;
    try {
      r = await start(health({ storagedriver: { enabled: true, interval: 1000, threshold: 2 } }), { storage: { name: 'azure', options } });
      await passing(r);
      await promisify(execFile)('bash', [script('azurite-stop.sh'), stateDir]);
      const res = await failing(r);
      assert.deepEqual(Object.keys(res.json()), ['storagedriver_azure']);
      await startService('azurite-start.sh', { timeoutMs: 90_000, env: { ...env, WHARF_AZURITE_DIR: stateDir } });
      await passing(r);
    } finally {
      await r?.started.close();
      await promisify(execFile)('bash', [script('azurite-stop.sh'), stateDir, '--purge']);
    }
  });

  it('stop with the registry: no check runs after close', async () => {
    let hits = 0;
    const target = http.createServer((_req, res) => {
      hits++;
      res.end();
    });
    await new Promise<void>((res) => target.listen(0, '127.0.0.1', res));
    const uri = `http://127.0.0.1:${(target.address() as net.AddressInfo).port}/`;
    const r = await start(health({ http: [{ uri, headers: {}, statuscode: 200, timeout: 1000, interval: 50, threshold: 0 }] }));
    await until(async () => ({ status: hits }) as Res, (x) => x.status >= 2, 'two checks');
    await r.started.close();
    const atClose = hits;
    await new Promise((res) => setTimeout(res, 300));
    assert.ok(hits <= atClose + 1, `${hits - atClose} checks after close`); // one may have been in flight
    target.close();
  });
});

describe('debug server', () => {
  it('/debug/health answers GET only, /debug/vars is JSON, other paths are 404; no checks is healthy', async () => {
    const r = await start(health({}));
    try {
      const h = await request(r.debug, 'GET', '/debug/health');
      assert.equal(h.status, 200);
      assert.equal(h.text, '{}');
      const post = await request(r.debug, 'POST', '/debug/health');
      assert.equal(post.status, 404);
      assert.equal(post.text, '404 page not found\n');
      const vars = await request(r.debug, 'GET', '/debug/vars');
      assert.equal(vars.status, 200);
      const doc = vars.json();
      assert.ok(Array.isArray(doc.cmdline));
      assert.equal(typeof doc.memstats.rss, 'number');
      assert.deepEqual(doc.registry, { health: {}, healthy: true });
      assert.equal((await request(r.debug, 'GET', '/debug/pprof/')).status, 404);
      assert.equal((await request(r.debug, 'GET', '/v2/')).status, 404, 'the API is not on the debug port');
    } finally {
      await r.started.close();
    }
  });

  it('a debug address already in use stops start-up naming http.debug.addr', async () => {
    const busy = net.createServer();
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', res));
    const addr = `127.0.0.1:${(busy.address() as net.AddressInfo).port}`;
    try {
      await assert.rejects(
        startRegistry({ ...makeSettings({ inmemory: true }), debug: { addr, prometheus: { enabled: false, path: '/metrics' } } }),
        (err: Error) => err.message.startsWith(`http.debug.addr: cannot listen on ${addr}`) && /EADDRINUSE/.test(err.message),
      );
    } finally {
      busy.close();
    }
  });
});
