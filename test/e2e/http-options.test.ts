// http.net: unix (curl, and skopeo through a TCP-to-socket bridge) and http.draintimeout (SIGTERM
// with an upload in flight: new connections refused, the upload finishes, then the process exits).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { inspectDigest, makeTinyImage, ROOT, run, skopeoCopy, startWharf, tempDir, type RegistryServer } from './harness.js';

const sha = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

describe('http options', () => {
  const servers: RegistryServer[] = [];
  const bridges: net.Server[] = [];
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const b of bridges) b.close();
    for (const s of servers) await s.stop().catch(() => undefined);
  });

  it('http.net unix: curl and skopeo (through a TCP bridge) use a registry on a unix socket; a stale socket file is replaced', async () => {
    const dir = tempDir('unix');
    const socket = path.join(dir, 'wharf.sock');
    // A socket file left by a registry that died (killed: nothing answers on it any more).
    const dead = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`]);
    await new Promise((r) => dead.stdout!.once('data', r));
    dead.kill('SIGKILL');
    await new Promise((r) => dead.once('exit', r));
    assert.equal(fs.statSync(socket).isSocket(), true);
    const config = path.join(dir, 'config.yml');
    fs.writeFileSync(config, ['version: 0.1', 'storage:', '  filesystem:', `    rootdirectory: ${dir}/data`, 'http:', '  net: unix', `  addr: ${socket}`, ''].join('\n'));
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'serve', config], { stdio: 'ignore' });
    children.push(child);
    const curl = (url: string, extra: string[] = []) => run('curl', ['-s', '--unix-socket', socket, ...extra, url], { allowFail: true });
    const deadline = Date.now() + 20_000;
    while ((await curl('http://localhost/v2/', ['-o', '/dev/null', '-w', '%{http_code}'])).stdout !== '200') {
      assert.ok(Date.now() < deadline, 'Wharf answers on the unix socket');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(fs.statSync(socket).isSocket(), true);

    const bridge = net.createServer((c) => {
      const u = net.connect(socket);
      c.pipe(u).pipe(c);
      c.on('error', () => u.destroy());
      u.on('error', () => c.destroy());
    });
    bridges.push(bridge);
    await new Promise<void>((r) => bridge.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(bridge.address() as net.AddressInfo).port}`;
    const image = await makeTinyImage(`${tempDir('unix-img')}/layout`, 'v1', 2);
    await skopeoCopy(image.ref, `docker://${host}/unix/app:v1`);
    assert.equal(await inspectDigest(`${host}/unix/app:v1`), image.digest);
    const tags = await curl('http://localhost/v2/unix/app/tags/list');
    assert.deepEqual(JSON.parse(tags.stdout), { name: 'unix/app', tags: ['v1'] });
    child.kill('SIGTERM');
  });

  it('http.draintimeout: on SIGTERM new connections are refused, the upload in flight finishes, then the process exits', async () => {
    const wharf = await startWharf({ extraConfig: ['  draintimeout: 20s'] });
    servers.push(wharf);
    const post = await fetch(`${wharf.url}/v2/drain/app/blobs/uploads/`, { method: 'POST' });
    const location = new URL(post.headers.get('location')!, wharf.url);
    const data = randomBytes(4 * 1024 * 1024);
    location.searchParams.set('digest', sha(data));
    // A monolithic PUT whose body is still arriving when SIGTERM comes.
    const answer = new Promise<number>((resolve, reject) => {
      const req = http.request(location, { method: 'PUT', headers: { 'content-length': data.length, 'content-type': 'application/octet-stream' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write(data.subarray(0, 1024 * 1024));
      setTimeout(() => {
        process.kill(wharf.pid, 'SIGTERM');
        setTimeout(async () => {
          // Not accepting any more: a new connection is refused while the upload goes on.
          const refused = await fetch(`${wharf.url}/v2/`).then(() => false, () => true);
          assert.equal(refused, true, 'a new request after SIGTERM is refused');
          req.end(data.subarray(1024 * 1024));
        }, 500);
      }, 300);
    });
    assert.equal(await answer, 201, 'the upload in flight completes');
    const exited = await waitForExit(wharf.pid, 10_000);
    assert.equal(exited, true, 'the process exits once drained');
    // The blob is really there: a fresh server on the same data serves it.
    const again = await startWharf({ dataDir: wharf.dataDir });
    servers.push(again);
    const got = Buffer.from(await (await fetch(`${again.url}/v2/drain/app/blobs/${sha(data)}`)).arrayBuffer());
    assert.equal(sha(got), sha(data));
  });
});

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
