// podman and buildah (vfs storage, plain HTTP) against the registry under test.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type OciImage,
  type RegistryServer,
  buildah,
  getManifest,
  inspectRaw,
  makeTinyImage,
  podman,
  readOciImage,
  requireTools,
  sha256,
  show,
  skopeoCopy,
  startTarget,
  tempDir,
  unpackOci,
  verifyOciLayout,
} from './harness.js';

describe('podman and buildah', { timeout: 240_000 }, () => {
  let reg: RegistryServer;
  let work: string;
  let img: OciImage;

  before(async () => {
    requireTools('podman', 'buildah', 'skopeo', 'umoci');
    work = tempDir('podman');
    reg = await startTarget({ workDir: work });
    img = await makeTinyImage(path.join(work, 'src'), 'v1', 2);
  });
  after(async () => {
    await reg?.stop();
  });

  test('podman pull, push (OCI and v2s2), pull again into fresh storage: digests and content match', async () => {
    const src = `${reg.host}/podman/src:v1`;
    await skopeoCopy(img.ref, `docker://${src}`);
    const configDigest = img.blobs[0];

    const store = path.join(work, 'podman-a');
    await podman(store, ['pull', '-q', '--tls-verify=false', src]);
    const pulledDigest = (await podman(store, ['image', 'inspect', '--format', '{{.Digest}}', src])).stdout.trim();
    assert.equal(pulledDigest, img.digest, 'podman image inspect .Digest after pull');
    const id = (await podman(store, ['image', 'inspect', '--format', '{{.Id}}', src])).stdout.trim();
    assert.equal(`sha256:${id}`, configDigest, 'podman image ID = config digest');

    for (const [tag, format, mediaType] of [
      ['oci', 'oci', 'application/vnd.oci.image.manifest.v1+json'],
      ['v2s2', 'v2s2', 'application/vnd.docker.distribution.manifest.v2+json'],
    ] as const) {
      const dst = `${reg.host}/podman/pushed:${tag}`;
      const digestFile = path.join(work, `podman-${tag}.digest`);
      await podman(store, ['push', '-q', '--tls-verify=false', '--format', format, '--digestfile', digestFile, src, `docker://${dst}`]);
      const pushed = fs.readFileSync(digestFile, 'utf8').trim();
      const served = await inspectRaw(dst);
      assert.equal(served.digest, pushed, `podman push --format ${format}: registry serves another manifest than podman pushed`);
      const get = await getManifest(reg.url, 'podman/pushed', tag);
      assert.equal(get.status, 200, show(get));
      assert.equal(get.headers.get('content-type'), mediaType, `Content-Type of the ${format} push: ${show(get)}`);
      assert.equal(get.headers.get('docker-content-digest'), pushed, `Docker-Content-Digest: ${show(get)}`);
      if (format === 'oci') assert.equal(served.manifest.config.digest, configDigest, 'config digest after podman push');

      // a fresh podman storage pulls it back by digest: same image ID
      const fresh = path.join(work, `podman-${tag}`);
      await podman(fresh, ['pull', '-q', '--tls-verify=false', `${reg.host}/podman/pushed@${pushed}`]);
      const id2 = (await podman(fresh, ['image', 'inspect', '--format', '{{.Id}}', `${reg.host}/podman/pushed@${pushed}`])).stdout.trim();
      if (format === 'oci') assert.equal(id2, id, `image ID after push+pull (${format})`);
      fs.rmSync(fresh, { recursive: true, force: true });
    }

    // content: the pushed image unpacks to the same files
    const out = path.join(work, 'podman-pulled');
    await skopeoCopy(`docker://${reg.host}/podman/pushed:oci`, `oci:${out}:x`);
    await verifyOciLayout(out);
    const a = await unpackOci(img.layout, 'v1');
    const b = await unpackOci(out, 'x');
    for (const f of ['etc/hello.txt', 'random.bin']) {
      assert.equal(sha256(fs.readFileSync(path.join(b, f))), sha256(fs.readFileSync(path.join(a, f))), `/${f} after podman push`);
    }
    // podman search uses the catalog and the tags list
    const search = await podman(store, ['search', '--tls-verify=false', '--format', '{{.Name}}', `${reg.host}/podman`]);
    assert.deepEqual(
      search.stdout.trim().split('\n').sort(),
      [`${reg.host}/podman/pushed`, `${reg.host}/podman/src`],
      `podman search ${reg.host}/podman`,
    );
    const tags = await podman(store, ['search', '--tls-verify=false', '--list-tags', `${reg.host}/podman/pushed`]);
    // NAME TAG table
    const listed = tags.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    assert.deepEqual(listed.map((c) => c[0]), [`${reg.host}/podman/pushed`, `${reg.host}/podman/pushed`], tags.stdout);
    assert.deepEqual(listed.map((c) => c[1]).sort(), ['oci', 'v2s2'], `podman search --list-tags:\n${tags.stdout}`);
    fs.rmSync(store, { recursive: true, force: true });
  });

  test('buildah from scratch + copy + commit + push; pull back and compare', async () => {
    const store = path.join(work, 'buildah');
    fs.mkdirSync(store, { recursive: true });
    const payload = path.join(work, 'payload.bin');
    fs.writeFileSync(payload, Buffer.concat([Buffer.from('wharf buildah e2e\n'), fs.readFileSync(path.join(img.layout, 'index.json'))]));
    const ctr = (await buildah(store, ['from', 'scratch'])).stdout.trim();
    await buildah(store, ['copy', ctr, payload, '/data/payload.bin']);
    await buildah(store, ['config', '--cmd', '/data/payload.bin', '--label', 'org.example.e2e=buildah', ctr]);
    await buildah(store, ['commit', '-q', ctr, 'localhost/wharf-e2e-buildah:v1']);
    const digestFile = path.join(work, 'buildah.digest');
    const ref = `${reg.host}/buildah/img:v1`;
    await buildah(store, ['push', '-q', '--tls-verify=false', '--digestfile', digestFile, 'localhost/wharf-e2e-buildah:v1', `docker://${ref}`]);
    const pushed = fs.readFileSync(digestFile, 'utf8').trim();
    const served = await inspectRaw(ref);
    assert.equal(served.digest, pushed, 'registry serves another manifest than buildah pushed');
    const localId = (await buildah(store, ['inspect', '--type', 'image', '--format', '{{.FromImageID}}', 'localhost/wharf-e2e-buildah:v1'])).stdout.trim();
    assert.equal(served.manifest.config.digest, `sha256:${localId}`, 'config digest = buildah image ID');

    const out = path.join(work, 'buildah-pulled');
    await skopeoCopy(`docker://${ref}`, `oci:${out}:v1`);
    assert.equal(readOciImage(out, 'v1').digest, pushed, 'pulled digest');
    const rootfs = await unpackOci(out, 'v1');
    assert.ok(fs.readFileSync(path.join(rootfs, 'data/payload.bin')).equals(fs.readFileSync(payload)), 'payload differs after push+pull');

    // buildah pull into another storage
    const store2 = path.join(work, 'buildah2');
    await buildah(store2, ['pull', '-q', '--tls-verify=false', ref]);
    const id2 = (await buildah(store2, ['inspect', '--type', 'image', '--format', '{{.FromImageID}}', ref])).stdout.trim();
    assert.equal(id2, localId, 'image ID after buildah pull');
    fs.rmSync(store, { recursive: true, force: true });
    fs.rmSync(store2, { recursive: true, force: true });
  });

  test('buildah push with zstd compression, pull back into fresh storage', async () => {
    const store = path.join(work, 'buildah-z');
    const payload = path.join(work, 'payload-z.bin');
    fs.writeFileSync(payload, Buffer.concat([Buffer.from('wharf zstd e2e\n'), fs.readFileSync(path.join(img.layout, 'index.json'))]));
    const ctr = (await buildah(store, ['from', 'scratch'])).stdout.trim();
    await buildah(store, ['copy', ctr, payload, '/data/payload.bin']);
    await buildah(store, ['commit', '-q', ctr, 'localhost/wharf-e2e-zstd:v1']);
    const digestFile = path.join(work, 'buildah-zstd.digest');
    const ref = `${reg.host}/buildah/zstd:v1`;
    await buildah(store, ['push', '-q', '--tls-verify=false', '--compression-format', 'zstd', '--digestfile', digestFile, 'localhost/wharf-e2e-zstd:v1', `docker://${ref}`]);
    const served = await inspectRaw(ref);
    assert.equal(served.digest, fs.readFileSync(digestFile, 'utf8').trim(), 'zstd push: registry serves another manifest than buildah pushed');
    assert.deepEqual(
      served.manifest.layers.map((l: { mediaType: string }) => l.mediaType),
      ['application/vnd.oci.image.layer.v1.tar+zstd'],
      'zstd layer media type',
    );
    const fresh = path.join(work, 'buildah-z2');
    await buildah(fresh, ['pull', '-q', '--tls-verify=false', ref]);
    const c2 = (await buildah(fresh, ['from', ref])).stdout.trim();
    const mnt = (await buildah(fresh, ['mount', c2])).stdout.trim();
    assert.ok(fs.readFileSync(path.join(mnt, 'data/payload.bin')).equals(fs.readFileSync(payload)), 'payload differs after zstd push+pull');
    await buildah(fresh, ['umount', c2], { allowFail: true });
    fs.rmSync(store, { recursive: true, force: true });
    fs.rmSync(fresh, { recursive: true, force: true });
  });
});
