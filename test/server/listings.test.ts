// end-8a/8b (tags list), the catalog, and end-12a/12b (referrers).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  assertAlive,
  assertError,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_MANIFEST,
  pushBlob,
  pushImage,
  putManifest,
  randomDigest,
  request,
  sha256,
  startServer,
  type PushedImage,
  type TestServer,
} from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(async () => {
  await s.close();
});

describe('tags list (end-8a/8b)', () => {
  const tags = ['latest', 'v1', 'v10', 'v2', '1.0', 'A', 'Z_z', 'b-1', 'b.1', '_x'];
  const sorted = [...tags].sort();
  before(async () => {
    const img = await pushImage(s, 'tags/app', 'digest');
    for (const t of tags) assert.equal((await putManifest(s, 'tags/app', t, img.content, OCI_MANIFEST)).status, 201);
  });

  it('200 {name, tags} sorted lexically, JSON, no Link when complete', async () => {
    const res = await request(s, 'GET', '/v2/tags/app/tags/list');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.deepEqual(res.json(), { name: 'tags/app', tags: sorted });
    assert.equal(res.headers.link, undefined);
    assert.deepEqual(sorted.slice(0, 4), ['1.0', 'A', 'Z_z', '_x']);
  });

  it('HEAD → 200 without a body', async () => {
    const res = await request(s, 'HEAD', '/v2/tags/app/tags/list');
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
  });

  it('n limits the page and a Link header names the next one; following Links walks every tag once', async () => {
    const seen: string[] = [];
    let next: string | null = '/v2/tags/app/tags/list?n=3';
    let pages = 0;
    while (next) {
      const res = await request(s, 'GET', next);
      assert.equal(res.status, 200, res.text);
      const page = res.json().tags as string[];
      assert.ok(page.length <= 3);
      seen.push(...page);
      pages++;
      const link = res.headers.link;
      if (link) {
        const m = /^<(\/v2\/tags\/app\/tags\/list\?last=([^&>]+)&n=3)>; rel="next"$/.exec(String(link));
        assert.ok(m, `Link: ${link}`);
        assert.equal(decodeURIComponent(m[2]!), page[page.length - 1]);
        next = m[1]!;
      } else next = null;
      assert.ok(pages < 20);
    }
    assert.deepEqual(seen, sorted);
    assert.equal(pages, 4);
  });

  it('the exact Link for the first page', async () => {
    const res = await request(s, 'GET', '/v2/tags/app/tags/list?n=2');
    assert.deepEqual(res.json().tags, sorted.slice(0, 2));
    assert.equal(res.headers.link, `</v2/tags/app/tags/list?last=${sorted[1]}&n=2>; rel="next"`);
  });

  it('last alone returns the tags after it; a last that is not a tag works lexically', async () => {
    assert.deepEqual((await request(s, 'GET', '/v2/tags/app/tags/list?last=v1')).json().tags, ['v10', 'v2']);
    assert.deepEqual((await request(s, 'GET', '/v2/tags/app/tags/list?last=m')).json().tags, ['v1', 'v10', 'v2']);
    assert.deepEqual((await request(s, 'GET', '/v2/tags/app/tags/list?last=zzz')).json().tags, []);
    const withN = await request(s, 'GET', '/v2/tags/app/tags/list?n=1&last=v1');
    assert.deepEqual(withN.json().tags, ['v10']);
    assert.equal(withN.headers.link, '</v2/tags/app/tags/list?last=v10&n=1>; rel="next"');
  });

  it('n equal to or larger than the count → everything, no Link', async () => {
    for (const n of [tags.length, 1000]) {
      const res = await request(s, 'GET', `/v2/tags/app/tags/list?n=${n}`);
      assert.deepEqual(res.json().tags, sorted);
      assert.equal(res.headers.link, undefined);
    }
  });

  it('n=0 → an empty list and no Link (judgement call, see report)', async () => {
    const res = await request(s, 'GET', '/v2/tags/app/tags/list?n=0');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json().tags, []);
  });

  it('an invalid n → 400 PAGINATION_NUMBER_INVALID', async () => {
    for (const n of ['-1', 'abc', '1.5', '1e3', '0x10', '99999999999999999999']) {
      assertError(await request(s, 'GET', `/v2/tags/app/tags/list?n=${n}`), 400, 'PAGINATION_NUMBER_INVALID');
    }
    await assertAlive(s);
  });

  it('unknown repository → 404 NAME_UNKNOWN', async () => {
    assertError(await request(s, 'GET', '/v2/tags/never/tags/list'), 404, 'NAME_UNKNOWN');
    // A repository with blobs but no manifests is still unknown to tags/list.
    await pushBlob(s, 'tags/blobsonly', 'just a blob');
    assertError(await request(s, 'GET', '/v2/tags/blobsonly/tags/list'), 404, 'NAME_UNKNOWN');
  });

  it('after deleting the last tag the repository lists no tags', async () => {
    await pushImage(s, 'tags/one', 'only');
    assert.equal((await request(s, 'DELETE', '/v2/tags/one/manifests/only')).status, 202);
    const res = await request(s, 'GET', '/v2/tags/one/tags/list');
    if (res.status === 200) assert.deepEqual(res.json().tags ?? [], []);
    else assertError(res, 404, 'NAME_UNKNOWN');
  });
});

describe('catalog', () => {
  let c: TestServer;
  const repos = ['zeta', 'alpha', 'alpha/beta', 'alpha-x', 'm/n/o', 'b'];
  before(async () => {
    c = await startServer({ inmemory: true, catalogMaxEntries: 4 });
    for (const r of repos) await pushImage(c, r, 'v1');
    // As Distribution 2.8: a repository holding a blob is listed; one with only an upload is not.
    await pushBlob(c, 'blobs/only', 'listed once a blob is linked');
    await request(c, 'POST', '/v2/uploads/only/blobs/uploads/');
  });
  after(async () => {
    await c.close();
  });
  const sorted = [...repos, 'blobs/only'].sort();

  it('lists repositories that have blobs, sorted; capped by catalog.maxentries with a Link', async () => {
    const res = await request(c, 'GET', '/v2/_catalog');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.deepEqual(res.json(), { repositories: sorted.slice(0, 4) });
    assert.equal(res.headers.link, `</v2/_catalog?last=${encodeURIComponent(sorted[3]!)}&n=4>; rel="next"`);
  });

  it('n and last page through everything; following Links visits each repository once', async () => {
    const seen: string[] = [];
    let next: string | null = '/v2/_catalog?n=2';
    while (next) {
      const res = await request(c, 'GET', next);
      assert.equal(res.status, 200, res.text);
      seen.push(...(res.json().repositories as string[]));
      const link = res.headers.link;
      if (link) {
        const m = /^<(\/v2\/_catalog\?last=[^&>]+&n=2)>; rel="next"$/.exec(String(link));
        assert.ok(m, `Link: ${link}`);
        next = m[1]!;
      } else next = null;
    }
    assert.deepEqual(seen, sorted);
  });

  it('n above maxentries is capped; last works alone; last past the end → []', async () => {
    const big = await request(c, 'GET', '/v2/_catalog?n=100');
    assert.equal(big.json().repositories.length, 4);
    assert.ok(big.headers.link);
    assert.deepEqual((await request(c, 'GET', '/v2/_catalog?last=b')).json().repositories, sorted.filter((r) => r > 'b'));
    const end = await request(c, 'GET', '/v2/_catalog?last=zzzz');
    assert.deepEqual(end.json().repositories, []);
    assert.equal(end.headers.link, undefined);
  });

  it('an invalid n → 400 PAGINATION_NUMBER_INVALID', async () => {
    for (const n of ['-1', 'x', '2.5']) assertError(await request(c, 'GET', `/v2/_catalog?n=${n}`), 400, 'PAGINATION_NUMBER_INVALID');
  });

  it('an empty registry → {repositories: []}', async () => {
    const empty = await startServer({ inmemory: true });
    try {
      const res = await request(empty, 'GET', '/v2/_catalog');
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), { repositories: [] });
    } finally {
      await empty.close();
    }
  });
});

describe('referrers (end-12a/12b)', () => {
  let subject: PushedImage;
  let emptyConfig: string;
  let sig: Buffer;
  let sbom: Buffer;
  const SIG = 'application/vnd.example.signature.v1';
  const SBOM = 'application/vnd.example.sbom.v1';

  function artifact(subjectDesc: { digest: string; size: number; mediaType: string }, artifactType: string | null, configType: string, layer: string, annotations?: Record<string, string>) {
    return Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        ...(artifactType ? { artifactType } : {}),
        config: { mediaType: configType, digest: emptyConfig, size: 2 },
        layers: [{ mediaType: 'application/octet-stream', digest: layer, size: 9 }],
        subject: subjectDesc,
        ...(annotations ? { annotations } : {}),
      }),
    );
  }

  before(async () => {
    subject = await pushImage(s, 'ref/app', 'v1');
    emptyConfig = await pushBlob(s, 'ref/app', '{}');
    const layer = await pushBlob(s, 'ref/app', 'signature');
    const subj = { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.size };
    sig = artifact(subj, SIG, OCI_EMPTY, layer, { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'org.example.key': 'v' });
    sbom = artifact(subj, null, SBOM, layer);
  });

  it('PUT of a manifest with a subject answers OCI-Subject', async () => {
    for (const [content, ref] of [
      [sig, sha256(sig)],
      [sbom, 'sbom-tag'],
    ] as const) {
      const res = await putManifest(s, 'ref/app', ref, content, OCI_MANIFEST);
      assert.equal(res.status, 201, res.text);
      assert.equal(res.headers['oci-subject'], subject.digest);
      assert.equal(res.headers['docker-content-digest'], sha256(content));
    }
    const plain = await pushImage(s, 'ref/app', 'plain');
    assert.ok(plain.digest);
  });

  it('a manifest without a subject gets no OCI-Subject header', async () => {
    const img = await pushImage(s, 'ref/other', 'x');
    const res = await putManifest(s, 'ref/other', 'y', img.content, OCI_MANIFEST);
    assert.equal(res.headers['oci-subject'], undefined);
  });

  it('GET referrers → an OCI index of descriptors with artifactType and annotations', async () => {
    const res = await request(s, 'GET', `/v2/ref/app/referrers/${subject.digest}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['content-type'], OCI_INDEX);
    assert.equal(res.headers['oci-filters-applied'], undefined);
    const doc = res.json();
    assert.equal(doc.schemaVersion, 2);
    assert.equal(doc.mediaType, OCI_INDEX);
    const byDigest = new Map((doc.manifests as any[]).map((d) => [d.digest, d]));
    assert.equal(byDigest.size, 2);
    assert.deepEqual(byDigest.get(sha256(sig)), {
      mediaType: OCI_MANIFEST,
      digest: sha256(sig),
      size: sig.length,
      artifactType: SIG,
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'org.example.key': 'v' },
    });
    // Without artifactType, the config's mediaType stands in.
    assert.deepEqual(byDigest.get(sha256(sbom)), { mediaType: OCI_MANIFEST, digest: sha256(sbom), size: sbom.length, artifactType: SBOM });
  });

  it('?artifactType= filters and says so in OCI-Filters-Applied', async () => {
    const res = await request(s, 'GET', `/v2/ref/app/referrers/${subject.digest}?artifactType=${encodeURIComponent(SIG)}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual(res.json().manifests.map((d: any) => d.digest), [sha256(sig)]);
    const none = await request(s, 'GET', `/v2/ref/app/referrers/${subject.digest}?artifactType=application%2Fnothing`);
    assert.equal(none.status, 200);
    assert.equal(none.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual(none.json().manifests, []);
  });

  it('an unknown subject → 200 with an empty index', async () => {
    for (const [name, d] of [
      ['ref/app', randomDigest()],
      ['ref/never', subject.digest],
    ] as const) {
      const res = await request(s, 'GET', `/v2/${name}/referrers/${d}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers['content-type'], OCI_INDEX);
      assert.deepEqual(res.json(), { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
    }
  });

  it('referrers in another repository are not listed', async () => {
    const res = await request(s, 'GET', `/v2/ref/other/referrers/${subject.digest}`);
    assert.deepEqual(res.json().manifests, []);
  });

  it('a malformed digest → 400 DIGEST_INVALID; a tag is not a subject', async () => {
    assertError(await request(s, 'GET', '/v2/ref/app/referrers/sha256:abc'), 400, 'DIGEST_INVALID');
    assertError(await request(s, 'GET', '/v2/ref/app/referrers/v1'), 400, 'DIGEST_INVALID');
  });

  it('a referrer may be pushed before its subject exists (OCI 1.1)', async () => {
    const future = randomDigest();
    const layer = await pushBlob(s, 'ref/early', 'signature');
    emptyConfig = await pushBlob(s, 'ref/early', '{}');
    const content = artifact({ mediaType: OCI_MANIFEST, digest: future, size: 123 }, SIG, OCI_EMPTY, layer);
    const res = await putManifest(s, 'ref/early', sha256(content), content, OCI_MANIFEST);
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers['oci-subject'], future);
    const list = await request(s, 'GET', `/v2/ref/early/referrers/${future}`);
    assert.deepEqual(list.json().manifests.map((d: any) => d.digest), [sha256(content)]);
  });

  it('an index can be a referrer too (artifactType from the index)', async () => {
    const content = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        artifactType: 'application/vnd.example.bundle',
        manifests: [],
        subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.size },
      }),
    );
    const res = await putManifest(s, 'ref/app', 'bundle', content, OCI_INDEX);
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers['oci-subject'], subject.digest);
    const list = await request(s, 'GET', `/v2/ref/app/referrers/${subject.digest}?artifactType=application%2Fvnd.example.bundle`);
    assert.deepEqual(list.json().manifests, [{ mediaType: OCI_INDEX, digest: sha256(content), size: content.length, artifactType: 'application/vnd.example.bundle' }]);
    assert.equal((await request(s, 'DELETE', `/v2/ref/app/manifests/${sha256(content)}`)).status, 202);
  });

  it('deleting a referrer removes it from the list; deleting only its tag does not', async () => {
    assert.equal((await request(s, 'DELETE', '/v2/ref/app/manifests/sbom-tag')).status, 202);
    let list = await request(s, 'GET', `/v2/ref/app/referrers/${subject.digest}`);
    assert.equal(list.json().manifests.length, 2, 'untagging leaves the manifest, and so the referrer');
    assert.equal((await request(s, 'DELETE', `/v2/ref/app/manifests/${sha256(sig)}`)).status, 202);
    list = await request(s, 'GET', `/v2/ref/app/referrers/${subject.digest}`);
    assert.deepEqual(list.json().manifests.map((d: any) => d.digest), [sha256(sbom)]);
    assert.equal((await request(s, 'DELETE', `/v2/ref/app/manifests/${sha256(sbom)}`)).status, 202);
    list = await request(s, 'GET', `/v2/ref/app/referrers/${subject.digest}`);
    assert.deepEqual(list.json().manifests, []);
    // The subject itself is untouched.
    assert.equal((await request(s, 'HEAD', `/v2/ref/app/manifests/${subject.digest}`)).status, 200);
  });
});
