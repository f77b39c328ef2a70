// containerd's ctr (private containerd daemon) against the registry under test: pull with unpack (native snapshotter),
// push to a second repository (cross-repo mount), push of a new image, multi-arch pull and push.
// ctr talks to the registry through a recording proxy so the test can see the mount requests.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type Containerd,
  type OciImage,
  type RecordingProxy,
  type RegistryServer,
  inspectRaw,
  makeMultiArchImage,
  makeTinyImage,
  requireRoot,
  requireTools,
  run,
  skopeoCopy,
  startContainerd,
  startRecordingProxy,
  startTarget,
  tempDir,
} from './harness.js';

function imageDigest(lsOutput: string, ref: string): string | undefined {
  // ctr image ls: REF TYPE DIGEST SIZE PLATFORMS LABELS
  for (const line of lsOutput.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols[0] === ref) return cols[2];
  }
  return undefined;
}

describe('containerd ctr', { timeout: 240_000 }, () => {
  let reg: RegistryServer;
  let proxy: RecordingProxy;
  let ctd: Containerd;
  let work: string;
  let img: OciImage;

  before(async () => {
    requireRoot('containerd');
    requireTools('containerd', 'ctr', 'skopeo', 'umoci');
    work = tempDir('ctr');
    reg = await startTarget({ workDir: work });
    proxy = await startRecordingProxy(reg.port);
    ctd = await startContainerd();
    img = await makeTinyImage(path.join(work, 'src'), 'v1', 2);
  });
  after(async () => {
    await ctd?.stop();
    await proxy?.close();
    await reg?.stop();
  });

  test('ctr pull (with unpack), then push to a second repo uses cross-repo mount', async () => {
    await skopeoCopy(img.ref, `docker://${reg.host}/ctr/src:v1`);
    const src = `${proxy.host}/ctr/src:v1`;
    const dst = `${proxy.host}/ctr/dst:v1`;
    await ctd.ctr(['image', 'pull', '--plain-http', '--snapshotter', 'native', src]);
    const ls = (await ctd.ctr(['image', 'ls'])).stdout;
    assert.equal(imageDigest(ls, src), img.digest, `ctr image ls digest after pull:\n${ls}`);
    // every blob was fetched and verified by containerd
    for (const d of img.blobs) await ctd.ctr(['content', 'get', d], { allowFail: false });

    await ctd.ctr(['image', 'tag', src, dst]);
    const before = proxy.requests.length;
    await ctd.ctr(['image', 'push', '--plain-http', dst]);
    const pushReqs = proxy.requests.slice(before);
    const mounts = pushReqs.filter((r) => r.method === 'POST' && r.url.includes('mount='));
    const log = pushReqs.map((r) => `${r.method} ${r.url} -> ${r.status}`).join('\n');
    assert.ok(mounts.length >= img.blobs.length, `expected a cross-repo mount POST per blob; requests:\n${log}`);
    for (const m of mounts) {
      assert.ok(/[?&]from=ctr(%2F|\/)src/.test(m.url), `mount without from=ctr/src: ${m.method} ${m.url}`);
      assert.equal(m.status, 201, `cross-repo mount not honoured (${m.method} ${m.url} -> ${m.status}); requests:\n${log}`);
    }
    assert.ok(
      !pushReqs.some((r) => r.method === 'PATCH' || (r.method === 'PUT' && r.url.includes('/blobs/uploads/'))),
      `blob data was uploaded although every blob could be mounted:\n${log}`,
    );
    const served = await inspectRaw(`${reg.host}/ctr/dst:v1`);
    assert.equal(served.digest, img.digest, 'manifest digest in the second repo');
  });

  test('ctr push of a new image (real blob uploads), then skopeo pulls it', async () => {
    const fresh = await makeTinyImage(path.join(work, 'fresh'), 'new', 3);
    const tar = path.join(work, 'fresh.tar');
    await run('tar', ['-C', fresh.layout, '-cf', tar, '.']);
    await ctd.ctr(['image', 'import', '--base-name', `${proxy.host}/ctr/new`, tar]);
    const ref = `${proxy.host}/ctr/new:new`;
    const ls = (await ctd.ctr(['image', 'ls'])).stdout;
    assert.equal(imageDigest(ls, ref), fresh.digest, `imported image:\n${ls}`);
    await ctd.ctr(['image', 'push', '--plain-http', ref]);
    const served = await inspectRaw(`${reg.host}/ctr/new:new`);
    assert.equal(served.digest, fresh.digest, 'digest after ctr push');
    const out = path.join(work, 'ctr-new-pulled');
    await skopeoCopy(`docker://${reg.host}/ctr/new:new`, `oci:${out}:x`);
    for (const d of fresh.blobs) {
      const a = fs.readFileSync(path.join(fresh.layout, 'blobs', 'sha256', d.slice(7)));
      const b = fs.readFileSync(path.join(out, 'blobs', 'sha256', d.slice(7)));
      assert.ok(a.equals(b), `blob ${d} differs after ctr push + skopeo pull`);
    }
  });

  test('ctr pull --all-platforms of a multi-arch index and push it to another repo', async () => {
    const multi = await makeMultiArchImage(path.join(work, 'multi'), 'multi', 1);
    await skopeoCopy(multi.ref, `docker://${reg.host}/ctr/multi:v1`, ['--all']);
    const src = `${proxy.host}/ctr/multi:v1`;
    await ctd.ctr(['image', 'pull', '--plain-http', '--snapshotter', 'native', '--all-platforms', src]);
    const ls = (await ctd.ctr(['image', 'ls'])).stdout;
    assert.equal(imageDigest(ls, src), multi.digest, `index digest after ctr pull:\n${ls}`);
    const dst = `${proxy.host}/ctr/multi-copy:v1`;
    await ctd.ctr(['image', 'tag', src, dst]);
    await ctd.ctr(['image', 'push', '--plain-http', dst]);
    const served = await inspectRaw(`${reg.host}/ctr/multi-copy:v1`);
    assert.equal(served.digest, multi.digest, 'index digest after ctr push');
    for (const c of multi.children!) {
      assert.equal((await inspectRaw(`${reg.host}/ctr/multi-copy@${c.digest}`)).digest, c.digest, `child ${c.platform?.architecture}`);
    }
  });
});
