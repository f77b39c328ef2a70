// The debug server and health checks side by side with Distribution 2.8 (`docker-registry serve`):
// both run the same configuration (a file check and a TCP check on one debug port each) and must
// answer the same /debug/health documents, the same 503 on the API while a check fails, recover
// the same way, and expose HTTP metrics under the same names and labels.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { parseExposition, type Exposition } from '../metrics/exposition.js';
import { ROOT, freePort, liveChildren, requireTools, sleep, tempDir } from './harness.js';

interface Instance {
  kind: 'wharf' | 'reference';
  api: string;
  debug: string;
  child: ChildProcess;
  log: () => string;
}

async function launch(kind: Instance['kind'], health: string, work: string): Promise<Instance> {
  const [port, debugPort] = [await freePort(), await freePort()];
  const config = path.join(work, `${kind}.yml`);
  fs.writeFileSync(
    config,
    `version: 0.1\nlog: {level: info}\nstorage:\n  filesystem: {rootdirectory: ${work}/${kind}-data}\n` +
      `http:\n  addr: 127.0.0.1:${port}\n  secret: s\n  debug:\n    addr: 127.0.0.1:${debugPort}\n    prometheus: {enabled: true}\n${health}`,
  );
  const logPath = path.join(work, `${kind}.log`);
  const fd = fs.openSync(logPath, 'a');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
  const [cmd, args] = kind === 'wharf' ? [process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'serve', config]] : ['docker-registry', ['serve', config]];
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  liveChildren.add(child);
  child.on('exit', () => liveChildren.delete(child));
  const inst = { kind, api: `http://127.0.0.1:${port}`, debug: `http://127.0.0.1:${debugPort}`, child, log: () => fs.readFileSync(logPath, 'utf8') };
  await until(inst, () => fetch(`${inst.debug}/debug/health`).then((r) => r.status), (s) => s === 200 || s === 503, 'the debug server');
  return inst;
}

async function until<T>(inst: Instance, probe: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      last = await probe();
      if (ok(last as T)) return last as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`${inst.kind}: ${what}: last ${String(last)}\n--- log ---\n${inst.log().slice(-3000)}`);
    await sleep(50);
  }
}

async function answer(url: string, init?: RequestInit) {
  const r = await fetch(url, init);
  return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
}

const healthDoc = async (i: Instance) => answer(`${i.debug}/debug/health`);

/** Label names of each registry_http_* family, and the handlers of the in-flight gauge. */
function httpShape(e: Exposition): Record<string, string[]> {
  const out: Record<string, Set<string>> = {};
  for (const s of e.samples) {
    if (!s.name.startsWith('registry_http_')) continue;
    (out[s.name] ??= new Set()).add(Object.keys(s.labels).sort().join(','));
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, [...v].sort()]));
}

describe('debug server and health checks, Wharf vs Distribution 2.8', () => {
  let work: string;
  let flag: string;
  let tcpAddr: string;
  let instances: Instance[] = [];
  let listener: net.Server | undefined;

  before(async () => {
    requireTools('docker-registry');
    work = tempDir('debug-health');
    flag = path.join(work, 'out-of-rotation');
    tcpAddr = `127.0.0.1:${await freePort()}`;
    const health = `health:\n  file:\n    - file: ${flag}\n      interval: 300ms\n  tcp:\n    - addr: ${tcpAddr}\n      timeout: 500ms\n      interval: 300ms\n`;
    instances = await Promise.all([launch('wharf', health, work), launch('reference', health, work)]);
  });

  after(async () => {
    listener?.close();
    for (const i of instances) i.child.kill('SIGTERM');
  });

  it('report the same failing TCP check, the same 503 on the API, and 404 for POST /debug/health', async () => {
    const docs = await Promise.all(instances.map((i) => until(i, () => healthDoc(i), (d) => d.status === 503, 'the TCP check to fail')));
    for (const d of docs) assert.deepEqual(JSON.parse(d.body), { [tcpAddr]: `connection to ${tcpAddr} failed` });
    assert.equal(docs[0]!.type, docs[1]!.type);
    // The same document (Distribution's JSON encoder adds a newline, Wharf's error writer does not).
    const apis = (await Promise.all(instances.map((i) => answer(`${i.api}/v2/`)))).map((a) => ({ ...a, body: JSON.parse(a.body) }));
    assert.deepEqual(apis[0], apis[1], 'same status, Content-Type and body');
    assert.equal(apis[0]!.status, 503);
    const posts = await Promise.all(instances.map((i) => answer(`${i.debug}/debug/health`, { method: 'POST' })));
    assert.deepEqual(posts[0], posts[1]);
    assert.equal(posts[0]!.status, 404);
  });

  it('list both failing checks once the file exists, and pass again once both are fixed', async () => {
    fs.writeFileSync(flag, '');
    const both = { [tcpAddr]: `connection to ${tcpAddr} failed`, [flag]: 'file exists' };
    const docs = await Promise.all(instances.map((i) => until(i, () => healthDoc(i), (d) => Object.keys(JSON.parse(d.body)).length === 2, 'two failing checks')));
    for (const d of docs) assert.deepEqual(JSON.parse(d.body), both);
    fs.rmSync(flag);
    const { port } = { port: Number(tcpAddr.split(':')[1]) };
    listener = net.createServer((s) => s.destroy());
    await new Promise<void>((res) => listener!.listen(port, '127.0.0.1', res));
    const ok = await Promise.all(instances.map((i) => until(i, () => healthDoc(i), (d) => d.status === 200, 'the checks to pass')));
    assert.deepEqual(ok[0], ok[1]);
    assert.equal(ok[0]!.body, '{}');
    const apis = await Promise.all(instances.map((i) => answer(`${i.api}/v2/`)));
    assert.deepEqual(apis.map((a) => a.status), [200, 200]);
  });

  it('expose the HTTP metrics under the same names and label names', async () => {
    await Promise.all(instances.map((i) => answer(`${i.api}/v2/`)));
    const [wharf, reference] = await Promise.all(instances.map(async (i) => parseExposition(await (await fetch(`${i.debug}/metrics`)).text())));
    const ours = httpShape(wharf!);
    for (const [family, labels] of Object.entries(httpShape(reference!))) {
      assert.deepEqual(ours[family], labels, `${family} label names`);
    }
    const handlers = (e: Exposition) => e.samples.filter((s) => s.name === 'registry_http_in_flight_requests').map((s) => s.labels.handler);
    for (const h of handlers(reference!)) assert.ok(handlers(wharf!).includes(h), `in-flight gauge for ${h}`);
    const base = (e: Exposition) => e.samples.find((s) => s.name === 'registry_http_requests_total' && s.labels.handler === 'base' && s.labels.code === '200');
    assert.deepEqual(base(wharf!)?.labels, base(reference!)?.labels);
  });
});
