// A realistic image: a Debian bookworm minbase rootfs (debootstrap, cached per day) pushed and pulled
// together with small random images, then pulled by podman.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type OciImage,
  type RegistryServer,
  inspectRaw,
  makeDebianImage,
  makeTinyImage,
  pool,
  podman,
  readOciImage,
  requireTools,
  skopeoCopy,
  startTarget,
  tempDir,
  verifyOciLayout,
} from './harness.js';

describe('Debian base image', { timeout: 300_000 }, () => {
  let reg: RegistryServer;
  let work: string;
  let debian: OciImage;
  const small: OciImage[] = [];

  before(async () => {
    requireTools('skopeo', 'umoci', 'debootstrap', 'podman');
    work = tempDir('debian');
    debian = await makeDebianImage();
    for (let i = 0; i < 3; i++) small.push(await makeTinyImage(path.join(work, 'small'), `s${i}`, 1 + i * 3));
    reg = await startTarget({ workDir: work });
  });
  after(async () => {
    await reg?.stop();
  });

  test('push the Debian image and small ones concurrently, pull them all back', async () => {
    const jobs = [
      { img: debian, repo: 'library/debian', tag: 'bookworm' },
      ...small.map((img, i) => ({ img, repo: `small/r${i}`, tag: img.tag })),
    ];
    await pool(jobs, 4, (j) => skopeoCopy(j.img.ref, `docker://${reg.host}/${j.repo}:${j.tag}`));
    await pool(jobs, 4, async (j) => {
      const served = await inspectRaw(`${reg.host}/${j.repo}:${j.tag}`);
      assert.equal(served.digest, j.img.digest, `${j.repo}:${j.tag} digest`);
      const out = path.join(work, `pulled-${j.repo.replace('/', '_')}`);
      await skopeoCopy(`docker://${reg.host}/${j.repo}:${j.tag}`, `oci:${out}:${j.tag}`);
      const pulled = readOciImage(out, j.tag);
      assert.equal(pulled.digest, j.img.digest, `${j.repo}:${j.tag} pulled digest`);
      assert.deepEqual(pulled.blobs, j.img.blobs, `${j.repo}:${j.tag} pulled blobs`);
      await verifyOciLayout(out);
    });
    // the big layer really is big (chunked/streamed paths are exercised)
    const layer = debian.blobs[debian.blobs.length - 1];
    const size = fs.statSync(path.join(debian.layout, 'blobs', 'sha256', layer.slice(7))).size;
    assert.ok(size > 20 * 1024 * 1024, `Debian layer unexpectedly small: ${size} bytes`);
  });

  test('podman pulls the Debian image and sees its files', async () => {
    const store = path.join(work, 'podman');
    const ref = `${reg.host}/library/debian:bookworm`;
    await podman(store, ['pull', '-q', '--tls-verify=false', ref]);
    const digest = (await podman(store, ['image', 'inspect', '--format', '{{.Digest}}', ref])).stdout.trim();
    assert.equal(digest, debian.digest, 'podman image digest');
    // the rootfs is in the vfs store: find /etc/debian_version in some layer dir
    const vfsDir = path.join(store, 'root', 'vfs', 'dir');
    const found = fs
      .readdirSync(vfsDir)
      .map((d) => path.join(vfsDir, d, 'etc', 'debian_version'))
      .find((f) => fs.existsSync(f));
    assert.ok(found, `no /etc/debian_version under ${vfsDir}`);
    assert.match(fs.readFileSync(found, 'utf8'), /^12\./, 'Debian version');
    fs.rmSync(store, { recursive: true, force: true });
  });
});
