// skopeo against the registry under test: OCI and Docker v2s2 images, a multi-arch index with --all,
// inspect, list-tags and delete.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type OciImage,
  type RegistryServer,
  TARGET,
  describeResult,
  inspectDigest,
  inspectRaw,
  makeMultiArchImage,
  makeTinyImage,
  readBlobJson,
  readOciImage,
  requireTools,
  runExpectFailure,
  sha256,
  skopeo,
  skopeoCopy,
  startTarget,
  tempDir,
  unpackOci,
  verifyOciLayout,
} from './harness.js';

describe('skopeo', { timeout: 240_000 }, () => {
  let reg: RegistryServer;
  let work: string;
  let img: OciImage;

  before(async () => {
    requireTools('skopeo', 'umoci');
    work = tempDir('skopeo');
    reg = await startTarget({ workDir: work });
    img = await makeTinyImage(path.join(work, 'src'), 'v1', 3);
  });
  after(async () => {
    await reg?.stop();
  });

  test('copy an OCI image in and out: same manifest digest, same blobs, same files', async () => {
    const ref = `${reg.host}/skopeo/oci:v1`;
    await skopeoCopy(img.ref, `docker://${ref}`);
    const served = await inspectRaw(ref);
    assert.equal(served.digest, img.digest, `manifest served for ${ref} differs from the pushed one`);
    assert.equal(await inspectDigest(ref), img.digest, 'skopeo inspect reports another digest');

    const out = path.join(work, 'pulled-oci');
    await skopeoCopy(`docker://${ref}`, `oci:${out}:v1`);
    const pulled = readOciImage(out, 'v1');
    assert.equal(pulled.digest, img.digest, 'pulled manifest digest');
    assert.deepEqual(pulled.blobs, img.blobs, 'pulled config/layer digests');
    await verifyOciLayout(out);
    const a = await unpackOci(img.layout, 'v1');
    const b = await unpackOci(out, 'v1');
    for (const f of ['etc/hello.txt', 'hello.sh', 'random.bin']) {
      assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), `file /${f} differs after the round trip`);
    }

    // by digest, too
    const byDigest = path.join(work, 'pulled-by-digest');
    await skopeoCopy(`docker://${reg.host}/skopeo/oci@${img.digest}`, `oci:${byDigest}:x`);
    assert.equal(readOciImage(byDigest, 'x').digest, img.digest, 'pull by digest');
  });

  test('copy with --format v2s2: Docker schema 2 manifest stored and served unchanged', async () => {
    const ref = `${reg.host}/skopeo/v2s2:v1`;
    await skopeoCopy(img.ref, `docker://${ref}`, ['--format', 'v2s2']);
    const served = await inspectRaw(ref);
    assert.equal(served.manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json', 'manifest media type');
    assert.equal(served.manifest.config.mediaType, 'application/vnd.docker.container.image.v1+json', 'config media type');
    assert.equal(await inspectDigest(ref), served.digest, 'skopeo inspect digest vs sha256 of the served bytes');
    assert.deepEqual(
      [served.manifest.config.digest, ...served.manifest.layers.map((l: { digest: string }) => l.digest)],
      img.blobs,
      'v2s2 conversion must keep the config and layer blobs',
    );
    // dir: keeps the manifest byte for byte
    const out = path.join(work, 'pulled-v2s2');
    await skopeoCopy(`docker://${ref}`, `dir:${out}`);
    const m = fs.readFileSync(path.join(out, 'manifest.json'));
    assert.equal(sha256(m), served.digest, 'pulled v2s2 manifest digest');
    for (const d of img.blobs) {
      const f = path.join(out, d.split(':')[1]);
      assert.equal(sha256(fs.readFileSync(f)), d, `pulled blob ${d}`);
    }
  });

  test('multi-arch OCI index with --all: index and both platforms round-trip', async () => {
    const multi = await makeMultiArchImage(path.join(work, 'multi'), 'multi', 1);
    const ref = `${reg.host}/skopeo/multi:v1`;
    await skopeoCopy(multi.ref, `docker://${ref}`, ['--all']);
    const served = await inspectRaw(ref);
    assert.equal(served.digest, multi.digest, 'index digest');
    assert.equal(served.manifest.mediaType, 'application/vnd.oci.image.index.v1+json', 'index media type');
    assert.deepEqual(
      served.manifest.manifests.map((m: { digest: string }) => m.digest),
      multi.children!.map((c) => c.digest),
      'index children',
    );
    // skopeo inspect resolves the index to the child for the requested platform
    for (const [i, arch] of [[0, 'amd64'], [1, 'arm64']] as const) {
      const r = await skopeo(['inspect', '--tls-verify=false', '--override-arch', arch, `docker://${ref}`]);
      const info = JSON.parse(r.stdout);
      const child = readBlobJson(multi.layout, multi.children![i].digest);
      assert.equal(info.Architecture, arch, `skopeo inspect --override-arch ${arch}`);
      assert.deepEqual(info.Layers, child.layers.map((l: { digest: string }) => l.digest), `${arch} layers`);
    }
    for (const c of multi.children!) {
      assert.equal((await inspectRaw(`${reg.host}/skopeo/multi@${c.digest}`)).digest, c.digest, `child ${c.digest}`);
    }
    const out = path.join(work, 'pulled-multi');
    await skopeoCopy(`docker://${ref}`, `oci:${out}:v1`, ['--all']);
    const pulled = readOciImage(out, 'v1');
    assert.equal(pulled.digest, multi.digest, 'pulled index digest');
    assert.deepEqual(pulled.blobs, multi.blobs, 'pulled blobs of both platforms');
    await verifyOciLayout(out);
  });

  test('list-tags lists exactly the pushed tags', async () => {
    const repo = `${reg.host}/skopeo/tags`;
    const small = await makeTinyImage(path.join(work, 'small'), 't', 1);
    for (const t of ['latest', 'v1.0', '1', 'a_b-c.d']) await skopeoCopy(small.ref, `docker://${repo}:${t}`);
    const r = await skopeo(['list-tags', '--tls-verify=false', `docker://${repo}`]);
    const listed = JSON.parse(r.stdout);
    assert.equal(listed.Repository, repo);
    assert.deepEqual([...listed.Tags].sort(), ['1', 'a_b-c.d', 'latest', 'v1.0'], 'tags');
  });

  test('delete: the manifest is gone afterwards', async () => {
    const ref = `${reg.host}/skopeo/del:v1`;
    const small = await makeTinyImage(path.join(work, 'del'), 'd', 1);
    await skopeoCopy(small.ref, `docker://${ref}`);
    assert.equal(await inspectDigest(ref), small.digest);
    await skopeo(['delete', '--tls-verify=false', `docker://${ref}`]);
    const byTag = await runExpectFailure('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref}`]);
    assert.match(byTag.stderr, /manifest unknown|not found|unknown/i, 'inspect by tag after delete');
    const byDigest = await runExpectFailure('skopeo', [
      'inspect',
      '--tls-verify=false',
      '--raw',
      `docker://${reg.host}/skopeo/del@${small.digest}`,
    ]);
    assert.match(byDigest.stderr, /manifest unknown|not found|unknown/i, 'inspect by digest after delete');
    const tags = await skopeo(['list-tags', '--tls-verify=false', `docker://${reg.host}/skopeo/del`], { allowFail: true });
    if (tags.code === 0) assert.ok(!(JSON.parse(tags.stdout).Tags ?? []).includes('v1'), `tag v1 still listed: ${tags.stdout}`);
  });

  test('concurrent pushes of one image to one tag and to other repositories all succeed', async () => {
    const same = await makeTinyImage(path.join(work, 'conc'), 'c', 3);
    const dests = [
      ...[0, 1, 2, 3].map(() => `${reg.host}/skopeo/conc:v1`),
      ...[0, 1, 2, 3].map((i) => `${reg.host}/skopeo/conc${i}:v1`),
    ];
    const results = await Promise.all(dests.map((d) => skopeoCopy(same.ref, `docker://${d}`, [], { allowFail: true })));
    const failed = results.filter((r) => r.code !== 0);
    if (TARGET === 'reference' && failed.length) {
      // Distribution 2.8 itself loses this race now and then ("manifest blob unknown" when the same
      // blob is uploaded to one repository concurrently); Wharf must not. Check the rest of the test.
      console.log(`[skopeo] docker-registry failed ${failed.length} of ${results.length} concurrent pushes (known Distribution race); pushing them again`);
      for (const [i, r] of results.entries()) if (r.code !== 0) await skopeoCopy(same.ref, `docker://${dests[i]}`);
    } else {
      assert.deepEqual(failed.map(describeResult), [], 'concurrent skopeo pushes failed');
    }
    for (const d of new Set(dests)) assert.equal((await inspectRaw(d)).digest, same.digest, `digest of ${d}`);
    const out = path.join(work, 'pulled-conc');
    await skopeoCopy(`docker://${reg.host}/skopeo/conc:v1`, `oci:${out}:v1`);
    await verifyOciLayout(out);
  });
});
