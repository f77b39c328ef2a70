/**
 * pathFor against Distribution's documented layout (registry/storage/paths.go), spelled out
 * literally here so a slip in paths.ts cannot also slip into the expectation.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkPath } from '../../src/storage/driver.js';
import { pathFor, ROOT, type PathSpec } from '../../src/storage/paths.js';

const HEX = 'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789';
const DIGEST = `sha256:${HEX}`;
const NAME = 'foo/bar';
const TAG = 'thetag';
const ID = 'asdf-asdf-asdf-adsf';
const R = '/docker/registry/v2/repositories/foo/bar';

/** One expectation per kind: the Record type makes the compiler insist every kind is here. */
const EXPECTED: { [K in PathSpec['kind']]: [Extract<PathSpec, { kind: K }>, string] } = {
  blobsRoot: [{ kind: 'blobsRoot' }, '/docker/registry/v2/blobs'],
  blobDir: [{ kind: 'blobDir', digest: DIGEST }, `/docker/registry/v2/blobs/sha256/ab/${HEX}`],
  blobData: [{ kind: 'blobData', digest: DIGEST }, `/docker/registry/v2/blobs/sha256/ab/${HEX}/data`],
  repositoriesRoot: [{ kind: 'repositoriesRoot' }, '/docker/registry/v2/repositories'],
  repository: [{ kind: 'repository', name: NAME }, R],
  layersDir: [{ kind: 'layersDir', name: NAME }, `${R}/_layers`],
  layerLink: [{ kind: 'layerLink', name: NAME, digest: DIGEST }, `${R}/_layers/sha256/${HEX}/link`],
  manifestRevisionsDir: [{ kind: 'manifestRevisionsDir', name: NAME }, `${R}/_manifests/revisions`],
  manifestRevisionDir: [
    { kind: 'manifestRevisionDir', name: NAME, digest: DIGEST },
    `${R}/_manifests/revisions/sha256/${HEX}`,
  ],
  manifestRevisionLink: [
    { kind: 'manifestRevisionLink', name: NAME, digest: DIGEST },
    `${R}/_manifests/revisions/sha256/${HEX}/link`,
  ],
  tagsDir: [{ kind: 'tagsDir', name: NAME }, `${R}/_manifests/tags`],
  tagDir: [{ kind: 'tagDir', name: NAME, tag: TAG }, `${R}/_manifests/tags/thetag`],
  tagCurrentLink: [{ kind: 'tagCurrentLink', name: NAME, tag: TAG }, `${R}/_manifests/tags/thetag/current/link`],
  tagIndexEntryLink: [
    { kind: 'tagIndexEntryLink', name: NAME, tag: TAG, digest: DIGEST },
    `${R}/_manifests/tags/thetag/index/sha256/${HEX}/link`,
  ],
  uploadsDir: [{ kind: 'uploadsDir', name: NAME }, `${R}/_uploads`],
  uploadDir: [{ kind: 'uploadDir', name: NAME, id: ID }, `${R}/_uploads/${ID}`],
  uploadData: [{ kind: 'uploadData', name: NAME, id: ID }, `${R}/_uploads/${ID}/data`],
  uploadStartedAt: [{ kind: 'uploadStartedAt', name: NAME, id: ID }, `${R}/_uploads/${ID}/startedat`],
  uploadHashStates: [{ kind: 'uploadHashStates', name: NAME, id: ID }, `${R}/_uploads/${ID}/hashstates`],
  // Distribution's pull-through cache state, at the storage root as registry:2 writes it.
  proxySchedulerState: [{ kind: 'proxySchedulerState' }, '/scheduler-state.json'],
  // Wharf's notification queue: beside Distribution's tree, never inside it.
  notificationsRoot: [{ kind: 'notificationsRoot' }, '/wharf/notifications'],
  notificationQueue: [{ kind: 'notificationQueue', instance: 'host-5000' }, '/wharf/notifications/host-5000'],
  notificationLease: [{ kind: 'notificationLease', instance: 'host-5000' }, '/wharf/notifications/host-5000/lease'],
  notificationEndpoints: [{ kind: 'notificationEndpoints', instance: 'host-5000' }, '/wharf/notifications/host-5000/endpoints'],
  notificationEndpointQueue: [
    { kind: 'notificationEndpointQueue', instance: 'host-5000', endpoint: 'hook' },
    '/wharf/notifications/host-5000/endpoints/hook',
  ],
  notificationBatch: [
    { kind: 'notificationBatch', instance: 'host-5000', endpoint: 'hook', batch: 'b1' },
    '/wharf/notifications/host-5000/endpoints/hook/b1',
  ],
  notificationCorruptBatch: [
    { kind: 'notificationCorruptBatch', instance: 'host-5000', endpoint: 'hook', batch: 'b1' },
    '/wharf/notifications/host-5000/corrupt/hook/b1',
  ],
};

describe('storage layout paths (Distribution 2.x)', () => {
  it("the root is /docker/registry/v2; Wharf's notification queue is outside it", () => {
    assert.equal(ROOT, '/docker/registry/v2');
    assert.ok(!pathFor({ kind: 'notificationsRoot' }).startsWith(`${ROOT}/`));
  });

  for (const [kind, [spec, expected]] of Object.entries(EXPECTED)) {
    it(`${kind} → ${expected.replace(HEX, '<hex>')}`, () => {
      assert.equal(pathFor(spec as PathSpec), expected);
      assert.doesNotThrow(() => checkPath('test', expected), 'a valid driver path');
    });
  }

  it('blob directories split on the first two hex characters, per algorithm', () => {
    const sha512 = 'f'.repeat(2) + '0e'.repeat(63);
    assert.equal(
      pathFor({ kind: 'blobData', digest: `sha512:${sha512}` }),
      `/docker/registry/v2/blobs/sha512/ff/${sha512}/data`,
    );
    assert.equal(
      pathFor({ kind: 'blobDir', digest: `sha256:01${'2'.repeat(62)}` }),
      `/docker/registry/v2/blobs/sha256/01/01${'2'.repeat(62)}`,
    );
  });

  it('links and revisions do not split the hex', () => {
    assert.equal(
      pathFor({ kind: 'layerLink', name: 'library/ubuntu', digest: DIGEST }),
      `/docker/registry/v2/repositories/library/ubuntu/_layers/sha256/${HEX}/link`,
    );
  });

  it('single- and many-component names, and tags with every allowed character, stay valid driver paths', () => {
    const names = ['alpine', 'library/ubuntu', 'a/b/c/d', 'my-org/my_app.v2/sub__name', 'localhost/x'];
    const tags = ['latest', 'v1.2.3', 'V1_RC-2', '_under', 'a'.repeat(128)];
    for (const name of names) {
      const repo = `/docker/registry/v2/repositories/${name}`;
      assert.equal(pathFor({ kind: 'repository', name }), repo);
      for (const tag of tags) {
        const current = pathFor({ kind: 'tagCurrentLink', name, tag });
        assert.equal(current, `${repo}/_manifests/tags/${tag}/current/link`);
        assert.doesNotThrow(() => checkPath('test', current), current);
      }
      const data = pathFor({ kind: 'uploadData', name, id: '3f1e2d4c-5b6a-4978-8a9b-0c1d2e3f4a5b' });
      assert.equal(data, `${repo}/_uploads/3f1e2d4c-5b6a-4978-8a9b-0c1d2e3f4a5b/data`);
      assert.doesNotThrow(() => checkPath('test', data), data);
    }
  });

  it('directories are prefixes of what they hold', () => {
    const pairs: Array<[PathSpec, PathSpec]> = [
      [{ kind: 'blobsRoot' }, { kind: 'blobData', digest: DIGEST }],
      [{ kind: 'blobDir', digest: DIGEST }, { kind: 'blobData', digest: DIGEST }],
      [{ kind: 'repositoriesRoot' }, { kind: 'repository', name: NAME }],
      [{ kind: 'repository', name: NAME }, { kind: 'layersDir', name: NAME }],
      [{ kind: 'layersDir', name: NAME }, { kind: 'layerLink', name: NAME, digest: DIGEST }],
      [{ kind: 'manifestRevisionsDir', name: NAME }, { kind: 'manifestRevisionDir', name: NAME, digest: DIGEST }],
      [{ kind: 'manifestRevisionDir', name: NAME, digest: DIGEST }, { kind: 'manifestRevisionLink', name: NAME, digest: DIGEST }],
      [{ kind: 'tagsDir', name: NAME }, { kind: 'tagDir', name: NAME, tag: TAG }],
      [{ kind: 'tagDir', name: NAME, tag: TAG }, { kind: 'tagCurrentLink', name: NAME, tag: TAG }],
      [{ kind: 'tagDir', name: NAME, tag: TAG }, { kind: 'tagIndexEntryLink', name: NAME, tag: TAG, digest: DIGEST }],
      [{ kind: 'uploadsDir', name: NAME }, { kind: 'uploadDir', name: NAME, id: ID }],
      [{ kind: 'uploadDir', name: NAME, id: ID }, { kind: 'uploadData', name: NAME, id: ID }],
      [{ kind: 'uploadDir', name: NAME, id: ID }, { kind: 'uploadStartedAt', name: NAME, id: ID }],
      [{ kind: 'uploadDir', name: NAME, id: ID }, { kind: 'uploadHashStates', name: NAME, id: ID }],
      [{ kind: 'notificationsRoot' }, { kind: 'notificationQueue', instance: 'i' }],
      [{ kind: 'notificationQueue', instance: 'i' }, { kind: 'notificationEndpointQueue', instance: 'i', endpoint: 'e' }],
      [{ kind: 'notificationEndpointQueue', instance: 'i', endpoint: 'e' }, { kind: 'notificationBatch', instance: 'i', endpoint: 'e', batch: 'b' }],
    ];
    for (const [dir, inside] of pairs) {
      assert.ok(pathFor(inside).startsWith(`${pathFor(dir)}/`), `${pathFor(inside)} is below ${pathFor(dir)}`);
    }
  });
});
