// Interoperability on ONE storage directory with Distribution 2.8 (docker-registry): what the
// reference wrote, Wharf serves; what Wharf writes (pushes, tags, deletes, mounts), the reference
// serves. The two never run at the same time on the directory.
// (With WHARF_E2E_TARGET=reference both sides are docker-registry, to check the test itself.)
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type OciImage,
  type RegistryServer,
  TARGET,
  errorCodes,
  finishUpload,
  getManifest,
  httpRequest,
  inspectRaw,
  makeMultiArchImage,
  makeTinyImage,
  readOciImage,
  run,
  requireTools,
  runExpectFailure,
  sha256,
  show,
  skopeo,
  skopeoCopy,
  startUpload,
  startReference,
  startTarget,
  tempDir,
  verifyOciLayout,
} from './harness.js';

const V2S2 = 'application/vnd.docker.distribution.manifest.v2+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

describe(`interop: docker-registry <-> ${TARGET} on one data directory`, { timeout: 240_000 }, () => {
  let work: string;
  let dataDir: string;
  let running: RegistryServer | undefined;
  let port: number | undefined;
  let refImg: OciImage;
  let refMulti: OciImage;
  let wharfImg: OciImage;
  let wharfMulti: OciImage;
  let v2s2Digest: string;
  /** what the previous server answered for the catalog and every repository's tags */
  let listing: Record<string, unknown> = {};

  async function switchTo(kind: 'reference' | 'target'): Promise<RegistryServer> {
    await running?.stop();
    // same port: image references stay the same across servers
    running = kind === 'reference' ? await startReference(dataDir, { workDir: work, port }) : await startTarget({ dataDir, workDir: work, port });
    port = running.port;
    return running;
  }

  async function pullAndCheck(reg: RegistryServer, repo: string, tag: string, img: OciImage, all = false) {
    const served = await inspectRaw(`${reg.host}/${repo}:${tag}`);
    assert.equal(served.digest, img.digest, `${reg.kind}: digest of ${repo}:${tag}`);
    const out = path.join(work, `pulled-${reg.kind}-${repo.replace(/\//g, '_')}-${tag}`);
    await skopeoCopy(`docker://${reg.host}/${repo}:${tag}`, `oci:${out}:${tag}`, all ? ['--all'] : []);
    const pulled = readOciImage(out, tag);
    assert.equal(pulled.digest, img.digest, `${reg.kind}: pulled digest of ${repo}:${tag}`);
    assert.deepEqual(pulled.blobs, img.blobs, `${reg.kind}: pulled blobs of ${repo}:${tag}`);
    await verifyOciLayout(out);
  }

  async function catalog(reg: RegistryServer): Promise<string[]> {
    const r = await httpRequest('GET', `${reg.url}/v2/_catalog?n=1000`);
    assert.equal(r.status, 200, show(r));
    return JSON.parse(r.body.toString('utf8')).repositories;
  }

  /** The catalog and each repository's tags list (status and body), as a user sees them. */
  async function snapshot(reg: RegistryServer): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = { _catalog: await catalog(reg) };
    for (const repo of out._catalog as string[]) {
      const r = await httpRequest('GET', `${reg.url}/v2/${repo}/tags/list`);
      if (r.status === 200) {
        const body = JSON.parse(r.body.toString('utf8'));
        // Distribution answers "tags": null for a repository whose tags were all deleted; [] is equivalent
        out[repo] = { ...body, tags: body.tags ?? [] };
      } else {
        out[repo] = `${r.status} ${errorCodes(r).join(',')}`;
      }
    }
    return out;
  }

  /** The server now running must list exactly what the previous one listed (same directory). */
  async function sameListing(reg: RegistryServer, previous: string) {
    const now = await snapshot(reg);
    const diffs: string[] = [];
    const before = listing._catalog as string[];
    const after = now._catalog as string[];
    const onlyBefore = before.filter((r) => !after.includes(r));
    const onlyNow = after.filter((r) => !before.includes(r));
    if (onlyBefore.length) diffs.push(`GET /v2/_catalog: ${previous} listed ${JSON.stringify(onlyBefore)}, ${reg.kind} does not`);
    if (onlyNow.length) diffs.push(`GET /v2/_catalog: ${reg.kind} lists ${JSON.stringify(onlyNow)}, ${previous} did not`);
    for (const repo of before.filter((r) => after.includes(r))) {
      const a = JSON.stringify(listing[repo]);
      const b = JSON.stringify(now[repo]);
      if (a !== b) diffs.push(`GET /v2/${repo}/tags/list: ${previous} answered ${a}, ${reg.kind} answers ${b}`);
    }
    for (const repo of onlyBefore) {
      const r = await httpRequest('GET', `${reg.url}/v2/${repo}/tags/list`);
      diffs.push(`  (${previous}: tags/list of ${repo} was ${JSON.stringify(listing[repo])}; ${reg.kind}: ${r.status} ${r.body.toString('utf8').trim()})`);
    }
    assert.deepEqual(diffs, [], `on the same directory, ${reg.kind} lists other repositories/tags than ${previous}:\n${diffs.join('\n')}`);
  }

  before(async () => {
    requireTools('docker-registry', 'skopeo', 'umoci');
    work = tempDir('interop');
    dataDir = path.join(work, 'data');
    refImg = await makeTinyImage(path.join(work, 'src'), 'ref', 2);
    wharfImg = await makeTinyImage(path.join(work, 'src'), 'wharf', 2);
    refMulti = await makeMultiArchImage(path.join(work, 'multi-ref'), 'm', 1);
    wharfMulti = await makeMultiArchImage(path.join(work, 'multi-wharf'), 'm', 1);
  });
  after(async () => {
    await running?.stop();
  });

  test('docker-registry pushes (OCI, v2s2, multi-arch, 2 tags)', async () => {
    const reg = await switchTo('reference');
    await skopeoCopy(refImg.ref, `docker://${reg.host}/ref/oci:v1`);
    await skopeoCopy(refImg.ref, `docker://${reg.host}/ref/oci:latest`);
    await skopeoCopy(refImg.ref, `docker://${reg.host}/ref/v2s2:v1`, ['--format', 'v2s2']);
    await skopeoCopy(refMulti.ref, `docker://${reg.host}/ref/multi:v1`, ['--all']);
    v2s2Digest = (await inspectRaw(`${reg.host}/ref/v2s2:v1`)).digest;
    // a repository holding only a blob (what an interrupted push leaves): Distribution lists it
    const blob = Buffer.from('a blob without a manifest\n');
    const put = await finishUpload(await startUpload(reg.url, 'ref/blob-only'), sha256(blob), blob);
    assert.equal(put.status, 201, show(put));
    listing = await snapshot(reg);
  });

  test(`${TARGET} serves what docker-registry stored`, async () => {
    const reg = await switchTo('target');
    await pullAndCheck(reg, 'ref/oci', 'v1', refImg);
    await pullAndCheck(reg, 'ref/oci', 'latest', refImg);
    await pullAndCheck(reg, 'ref/multi', 'v1', refMulti, true);
    const v2s2 = await getManifest(reg.url, 'ref/v2s2', 'v1');
    assert.equal(v2s2.status, 200, show(v2s2));
    assert.equal(v2s2.headers.get('content-type'), V2S2, show(v2s2));
    assert.equal(sha256(v2s2.body), v2s2Digest, `v2s2 manifest bytes: ${show(v2s2)}`);
    assert.equal(v2s2.headers.get('docker-content-digest'), v2s2Digest, show(v2s2));
    const multi = await getManifest(reg.url, 'ref/multi', 'v1', 'HEAD');
    assert.equal(multi.status, 200, show(multi));
    assert.equal(multi.headers.get('content-type'), OCI_INDEX, show(multi));
    assert.equal(multi.headers.get('docker-content-digest'), refMulti.digest, show(multi));
    const oci = await getManifest(reg.url, 'ref/oci', refImg.digest);
    assert.equal(oci.headers.get('content-type'), OCI_MANIFEST, show(oci));
    for (const d of refImg.blobs) {
      const b = await httpRequest('GET', `${reg.url}/v2/ref/oci/blobs/${d}`);
      assert.equal(b.status, 200, show(b));
      assert.equal(sha256(b.body), d, `blob content of ${d}`);
    }
    const tags = JSON.parse((await skopeo(['list-tags', '--tls-verify=false', `docker://${reg.host}/ref/oci`])).stdout).Tags;
    assert.deepEqual([...tags].sort(), ['latest', 'v1'], 'tags of ref/oci');
    const repos = await catalog(reg);
    for (const r of ['ref/multi', 'ref/oci', 'ref/v2s2']) assert.ok(repos.includes(r), `catalog ${JSON.stringify(repos)} lacks ${r}`);
    await sameListing(reg, 'docker-registry');
  });

  test(`${TARGET} writes: pushes, a new tag, a cross-repo mount, a delete`, async () => {
    const reg = await switchTo('target');
    await skopeoCopy(wharfImg.ref, `docker://${reg.host}/wharf/oci:v1`);
    await skopeoCopy(wharfMulti.ref, `docker://${reg.host}/wharf/multi:v1`, ['--all']);
    // registry-to-registry copy: blobs exist, only a manifest is written
    await skopeoCopy(`docker://${reg.host}/ref/oci:v1`, `docker://${reg.host}/ref/oci:v2`);
    // mount a blob that docker-registry stored into a new repository
    const layer = refImg.blobs[refImg.blobs.length - 1];
    const m = await httpRequest('POST', `${reg.url}/v2/wharf/mounted/blobs/uploads/?mount=${layer}&from=ref/oci`, {
      headers: { 'content-length': '0' },
    });
    assert.equal(m.status, 201, `cross-repo mount of a blob docker-registry stored: ${show(m)}`);
    // delete the v2s2 manifest docker-registry stored
    await skopeo(['delete', '--tls-verify=false', `docker://${reg.host}/ref/v2s2@${v2s2Digest}`]);
    await runExpectFailure('skopeo', ['--insecure-policy', 'inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/ref/v2s2:v1`]);
    listing = await snapshot(reg);
  });

  test(`docker-registry serves what ${TARGET} wrote`, async () => {
    const reg = await switchTo('reference');
    await pullAndCheck(reg, 'wharf/oci', 'v1', wharfImg);
    await pullAndCheck(reg, 'wharf/multi', 'v1', wharfMulti, true);
    await pullAndCheck(reg, 'ref/oci', 'v2', refImg);
    await pullAndCheck(reg, 'ref/oci', 'v1', refImg);
    const layer = refImg.blobs[refImg.blobs.length - 1];
    const b = await httpRequest('GET', `${reg.url}/v2/wharf/mounted/blobs/${layer}`);
    assert.equal(b.status, 200, `mounted blob: ${show(b)}`);
    assert.equal(sha256(b.body), layer, 'mounted blob content');
    const gone = await getManifest(reg.url, 'ref/v2s2', v2s2Digest);
    assert.equal(gone.status, 404, `manifest deleted by ${TARGET} still served by docker-registry: ${show(gone)}`);
    const goneTag = await getManifest(reg.url, 'ref/v2s2', 'v1');
    assert.equal(goneTag.status, 404, `tag of the deleted manifest still resolves on docker-registry: ${show(goneTag)}`);
    const tags = JSON.parse((await skopeo(['list-tags', '--tls-verify=false', `docker://${reg.host}/ref/oci`])).stdout).Tags;
    assert.deepEqual([...tags].sort(), ['latest', 'v1', 'v2'], 'tags of ref/oci');
    const repos = await catalog(reg);
    for (const r of ['wharf/multi', 'wharf/oci', 'wharf/mounted', 'ref/oci']) {
      assert.ok(repos.includes(r), `docker-registry catalog ${JSON.stringify(repos)} lacks ${r}`);
    }
    await sameListing(reg, TARGET);
  });

  test(`docker-registry garbage-collect on the shared directory keeps what ${TARGET} wrote; ${TARGET} serves it all after`, async () => {
    const ref = running!;
    const configPath = ref.configPath;
    await ref.stop();
    running = undefined;
    const gc = await run('docker-registry', ['garbage-collect', configPath], { env: { AWS_CA_BUNDLE: undefined } });
    const deleted = gc.stdout.split('\n').filter((l) => /blob eligible for deletion|Deleting blob/i.test(l));
    const reg = await switchTo('target');
    await pullAndCheck(reg, 'wharf/oci', 'v1', wharfImg);
    await pullAndCheck(reg, 'wharf/multi', 'v1', wharfMulti, true);
    await pullAndCheck(reg, 'ref/oci', 'v2', refImg);
    await pullAndCheck(reg, 'ref/multi', 'v1', refMulti, true);
    const still = [...wharfImg.blobs, ...wharfMulti.blobs, ...refImg.blobs, ...refMulti.blobs];
    for (const d of still) {
      assert.ok(!deleted.some((l) => l.includes(d)), `garbage-collect deleted ${d}, which is still referenced:\n${deleted.join('\n')}`);
    }
  });
});
