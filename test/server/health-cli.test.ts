// `wharf serve` as a real process with `http.debug` and `health`: configuration errors stop
// start-up naming the key; a running registry serves /debug/health and Prometheus metrics on its
// debug port, answers 503 while a check fails, and stops promptly on SIGTERM.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseExposition, value } from '../metrics/exposition.js';
import { assertError, request, type Res } from './helpers.js';

const BIN = path.join(process.cwd(), 'bin', 'wharf.js');

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function configFile(body: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-health-cli-'));
  dirs.push(dir);
  const file = path.join(dir, 'config.yml');
  fs.writeFileSync(file, `version: 0.1\nlog: {level: info, formatter: json}\nstorage:\n  filesystem: {rootdirectory: ${dir}/data}\n${body}`);
  return file;
}

function serveOnce(body: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'serve', configFile(`http: {addr: '127.0.0.1:0'}\n${body}`)], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stderr: r.stderr };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function until(probe: () => Promise<Res>, ok: (r: Res) => boolean, what: string, ms = 20_000): Promise<Res> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await probe().catch((e: Error) => ({ status: 0, text: e.message }) as Res);
    if (ok(r)) return r;
    if (Date.now() > deadline) assert.fail(`${what}: still ${r.status} ${r.text}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe('wharf serve: health and debug configuration', () => {
  it('a malformed health.http uri stops start-up naming health.http[0].uri', () => {
    const r = serveOnce('health:\n  http:\n    - uri: "not a url"\n      timeout: 1s\n');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /health\.http\[0\]\.uri \(REGISTRY_HEALTH_HTTP_0_URI\): expected an absolute http:\/\/ or https:\/\/ URL .*got "not a url"/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  it('a uri with another scheme is refused too; the second entry is named by its index', () => {
    const r = serveOnce('health:\n  http:\n    - uri: http://127.0.0.1:9/ok\n    - uri: ftp://mirror/ready\n');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /health\.http\[1\]\.uri .*got "ftp:\/\/mirror\/ready"/);
  });

  it('a tcp addr without a port stops start-up naming health.tcp[0].addr', () => {
    const r = serveOnce('health:\n  tcp:\n    - addr: redis\n');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /health\.tcp\[0\]\.addr \(REGISTRY_HEALTH_TCP_0_ADDR\): expected HOST:PORT/);
  });

  it('two checks of the same target stop start-up naming both keys', () => {
    const r = serveOnce('health:\n  file:\n    - file: /srv/down\n    - file: /srv/down\n');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /wharf: health\.file\[1\]\.file: a second health check of "\/srv\/down" \(health\.file\[0\]\.file has it already\)/);
  });

  it('serves /debug/health and /metrics on the debug port, 503 on the API while a file check fails, and stops on SIGTERM', async () => {
    const [port, debugPort] = [await freePort(), await freePort()];
    const flag = path.join(os.tmpdir(), `wharf-down-${process.pid}-${port}`);
    const file = configFile(
      `http:\n  addr: 127.0.0.1:${port}\n  debug:\n    addr: 127.0.0.1:${debugPort}\n    prometheus:\n      enabled: true\n` +
        `health:\n  file:\n    - file: ${flag}\n      interval: 100ms\n`,
    );
    const child = spawn(process.execPath, [BIN, 'serve', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const api = { port };
      const debug = { port: debugPort };
      await until(() => request(api, 'GET', '/v2/'), (r) => r.status === 200, `the API (log: ${log})`);
      assert.equal((await request(debug, 'GET', '/debug/health')).text, '{}');
      fs.writeFileSync(flag, '');
      const h = await until(() => request(debug, 'GET', '/debug/health'), (r) => r.status === 503, 'the file check to fail');
      assert.deepEqual(h.json(), { [flag]: 'file exists' });
      assertError(await request(api, 'GET', '/v2/'), 503, 'UNAVAILABLE');
      fs.rmSync(flag);
      await until(() => request(api, 'GET', '/v2/'), (r) => r.status === 200, 'the API to recover');
      const metrics = await request(debug, 'GET', '/metrics');
      const e = parseExposition(metrics.text);
      assert.ok(value(e, 'registry_http_requests_total', { handler: 'base', method: 'get', code: '503' }) >= 1);
      assert.ok(value(e, 'registry_http_requests_total', { handler: 'base', method: 'get', code: '200' }) >= 2);
      assert.match(log, /debug server listening on 127\.0\.0\.1:\d+/);
      assert.match(log, /health check failing/);
      const t0 = Date.now();
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.ok(Date.now() - t0 < 5000, 'stopped promptly');
      await assert.rejects(request(debug, 'GET', '/debug/health'), 'the debug server is closed');
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(flag, { force: true });
    }
  });
});
