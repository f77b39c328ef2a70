// A sweep of bad requests against one repository that holds an image: each gets the
// documented status and error code, changes nothing in the data dir (not even an empty
// directory), and the server answers GET /v2/ right after.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  assertAlive,
  assertError,
  DOCKER_MANIFEST,
  listFiles,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_MANIFEST,
  pushImage,
  randomDigest,
  request,
  sha256,
  startServer,
  startUpload,
  withQuery,
  type PushedImage,
  type ReqOpts,
  type TestServer,
} from './helpers.js';

let s: TestServer;
let img: PushedImage;
let upload: string;
before(async () => {
  s = await startServer();
  img = await pushImage(s, 'sweep/app', 'v1');
  upload = (await startUpload(s, 'sweep/app')).location;
});
after(async () => {
  await s.close();
});

type Case = [label: string, method: string, path: () => string, opts: () => ReqOpts, status: number, code: string | null];

const manifest = (doc: unknown, type = OCI_MANIFEST): ReqOpts => ({ body: JSON.stringify(doc), headers: { 'Content-Type': type } });
const D = () => randomDigest();

const cases: Case[] = [
  // names
  ['invalid name on upload start', 'POST', () => '/v2/Sweep/blobs/uploads/', () => ({}), 400, 'NAME_INVALID'],
  ['invalid name on manifest PUT', 'PUT', () => '/v2/sweep/App/manifests/v1', () => manifest({ schemaVersion: 2 }), 400, 'NAME_INVALID'],
  ['encoded slash in name', 'GET', () => '/v2/sweep%2Fapp/tags/list', () => ({}), 400, 'NAME_INVALID'],
  ['dot-dot name', 'POST', () => '/v2/sweep/../x/blobs/uploads/', () => ({}), 400, 'NAME_INVALID'],
  // blobs
  ['unknown blob', 'GET', () => `/v2/sweep/app/blobs/${D()}`, () => ({}), 404, 'BLOB_UNKNOWN'],
  ['blob bad digest', 'GET', () => '/v2/sweep/app/blobs/sha256:1234', () => ({}), 400, 'DIGEST_INVALID'],
  ['blob unknown algorithm', 'HEAD', () => `/v2/sweep/app/blobs/md5:${'a'.repeat(32)}`, () => ({}), 400, null],
  ['blob unsatisfiable range', 'GET', () => `/v2/sweep/app/blobs/${img.layerDigest}`, () => ({ headers: { Range: 'bytes=999999-' } }), 416, null],
  ['delete unknown blob', 'DELETE', () => `/v2/sweep/app/blobs/${D()}`, () => ({}), 404, 'BLOB_UNKNOWN'],
  ['delete blob of unknown repo', 'DELETE', () => `/v2/sweep/none/blobs/${img.layerDigest}`, () => ({}), 404, 'BLOB_UNKNOWN'],
  // uploads
  ['monolithic POST wrong digest', 'POST', () => `/v2/sweep/app/blobs/uploads/?digest=${D()}`, () => ({ body: 'abc' }), 400, 'DIGEST_INVALID'],
  ['monolithic POST bad digest', 'POST', () => '/v2/sweep/app/blobs/uploads/?digest=sha256:zz', () => ({ body: 'abc' }), 400, 'DIGEST_INVALID'],
  ['mount from invalid name', 'POST', () => `/v2/sweep/app/blobs/uploads/?mount=${img.layerDigest}&from=UP`, () => ({}), 400, 'NAME_INVALID'],
  ['PATCH unknown upload', 'PATCH', () => '/v2/sweep/app/blobs/uploads/nope', () => ({ body: 'abc' }), 404, 'BLOB_UPLOAD_UNKNOWN'],
  ['PATCH traversal id', 'PATCH', () => '/v2/sweep/app/blobs/uploads/..%2F..%2F_layers', () => ({ body: 'abc' }), 404, 'BLOB_UPLOAD_UNKNOWN'],
  ['PUT unknown upload', 'PUT', () => `/v2/sweep/app/blobs/uploads/nope?digest=${sha256('abc')}`, () => ({ body: 'abc' }), 404, 'BLOB_UPLOAD_UNKNOWN'],
  ['DELETE unknown upload', 'DELETE', () => '/v2/sweep/app/blobs/uploads/nope', () => ({}), 404, 'BLOB_UPLOAD_UNKNOWN'],
  ['PATCH out of order', 'PATCH', () => upload, () => ({ body: 'abc', headers: { 'Content-Range': '10-12' } }), 416, 'RANGE_INVALID'],
  ['PATCH malformed range', 'PATCH', () => upload, () => ({ body: 'abc', headers: { 'Content-Range': 'x-y' } }), 416, 'RANGE_INVALID'],
  ['PATCH range/length mismatch', 'PATCH', () => upload, () => ({ body: 'abc', headers: { 'Content-Range': '0-99' } }), 400, 'SIZE_INVALID'],
  ['PUT upload without digest', 'PUT', () => upload, () => ({ body: 'abc' }), 400, 'DIGEST_INVALID'],
  ['PUT upload malformed digest', 'PUT', () => withQuery(upload, 'digest=sha256:abc'), () => ({ body: 'abc' }), 400, 'DIGEST_INVALID'],
  // manifests
  ['manifest invalid JSON', 'PUT', () => '/v2/sweep/app/manifests/t', () => ({ body: '{"schemaVersion":', headers: { 'Content-Type': OCI_MANIFEST } }), 400, 'MANIFEST_INVALID'],
  ['manifest schemaVersion 1', 'PUT', () => '/v2/sweep/app/manifests/t', () => manifest({ schemaVersion: 1 }), 400, 'MANIFEST_INVALID'],
  ['manifest without config', 'PUT', () => '/v2/sweep/app/manifests/t', () => manifest({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }), 400, 'MANIFEST_INVALID'],
  ['manifest type mismatch', 'PUT', () => '/v2/sweep/app/manifests/t', () => ({ body: img.content, headers: { 'Content-Type': DOCKER_MANIFEST } }), 400, 'MANIFEST_INVALID'],
  [
    'manifest unknown config',
    'PUT',
    () => '/v2/sweep/app/manifests/t',
    () => manifest({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: D(), size: 1 }, layers: [] }),
    400,
    'MANIFEST_BLOB_UNKNOWN',
  ],
  [
    'index unknown child',
    'PUT',
    () => '/v2/sweep/app/manifests/t',
    () => manifest({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: D(), size: 1 }] }, OCI_INDEX),
    400,
    'MANIFEST_BLOB_UNKNOWN',
  ],
  ['manifest digest mismatch', 'PUT', () => `/v2/sweep/app/manifests/${D()}`, () => ({ body: img.content, headers: { 'Content-Type': OCI_MANIFEST } }), 400, 'DIGEST_INVALID'],
  ['manifest invalid tag', 'PUT', () => '/v2/sweep/app/manifests/-t', () => ({ body: img.content, headers: { 'Content-Type': OCI_MANIFEST } }), 400, 'TAG_INVALID'],
  ['manifest too large', 'PUT', () => '/v2/sweep/app/manifests/t', () => ({ body: '{}', headers: { 'Content-Type': OCI_MANIFEST, 'Content-Length': 4 * 1024 * 1024 + 10 } }), 413, 'MANIFEST_INVALID'],
  ['unknown manifest', 'GET', () => '/v2/sweep/app/manifests/nope', () => ({ headers: { Accept: OCI_MANIFEST } }), 404, 'MANIFEST_UNKNOWN'],
  ['OCI by tag without Accept', 'GET', () => '/v2/sweep/app/manifests/v1', () => ({}), 404, 'MANIFEST_UNKNOWN'],
  ['delete unknown manifest', 'DELETE', () => `/v2/sweep/app/manifests/${D()}`, () => ({}), 404, 'MANIFEST_UNKNOWN'],
  ['delete unknown tag', 'DELETE', () => '/v2/sweep/app/manifests/nope', () => ({}), 404, 'MANIFEST_UNKNOWN'],
  ['delete invalid tag', 'DELETE', () => '/v2/sweep/app/manifests/-nope', () => ({}), 400, 'TAG_INVALID'],
  // listings
  ['tags of unknown repo', 'GET', () => '/v2/sweep/none/tags/list', () => ({}), 404, 'NAME_UNKNOWN'],
  ['tags bad n', 'GET', () => '/v2/sweep/app/tags/list?n=-3', () => ({}), 400, 'PAGINATION_NUMBER_INVALID'],
  ['catalog bad n', 'GET', () => '/v2/_catalog?n=many', () => ({}), 400, 'PAGINATION_NUMBER_INVALID'],
  ['referrers bad digest', 'GET', () => '/v2/sweep/app/referrers/sha256:0', () => ({}), 400, 'DIGEST_INVALID'],
  // methods
  ['PUT on tags list', 'PUT', () => '/v2/sweep/app/tags/list', () => ({ body: '{}' }), 405, 'UNSUPPORTED'],
  ['POST on a manifest', 'POST', () => '/v2/sweep/app/manifests/v1', () => ({ body: '{}' }), 405, 'UNSUPPORTED'],
  ['PATCH on a blob', 'PATCH', () => `/v2/sweep/app/blobs/${img.layerDigest}`, () => ({ body: 'x' }), 405, 'UNSUPPORTED'],
];

describe('bad inputs change nothing on disk and the server keeps serving', () => {
  for (const [label, method, p, opts, status, code] of cases) {
    it(`${label}: ${status} ${code ?? ''}`, async () => {
      const before = listFiles(s.dir!);
      const res = await request(s, method, p(), opts());
      if (code && method !== 'HEAD') assertError(res, status, code);
      else assert.equal(res.status, status, res.text);
      assert.deepEqual(listFiles(s.dir!), before);
      await assertAlive(s);
    });
  }

  it('afterwards the image and the upload are intact', async () => {
    const m = await request(s, 'GET', `/v2/sweep/app/manifests/v1`, { headers: { Accept: OCI_MANIFEST } });
    assert.equal(m.status, 200);
    assert.ok(m.body.equals(img.content));
    const st = await request(s, 'GET', upload);
    assert.equal(st.status, 204);
    assert.equal(st.headers.range, '0-0');
    assert.deepEqual((await request(s, 'GET', '/v2/sweep/app/tags/list')).json().tags, ['v1']);
  });
});
