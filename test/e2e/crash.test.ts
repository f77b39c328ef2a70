// Crash safety: kill -9 the registry while 8 skopeo pushes and several raw chunked uploads are in
// flight, restart it on the same directory and port, and check that what it serves is consistent:
// - every repository/tag it lists resolves and pulls with verified digests (skopeo), and a tag only
//   ever points at the manifest that was pushed to it;
// - every blob that answers 200 hashes to its digest (and HEAD's Content-Length is its real size);
// - no temp file (*.tmp-*) shows up as a repository or tag;
// - every interrupted upload either resumes (GET gives Range, PATCH continues there, PUT with the
//   digest gives 201 and the blob is right) or answers 404 BLOB_UPLOAD_UNKNOWN;
// - the registry takes the same pushes again afterwards.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  type HttpResult,
  type OciImage,
  type RegistryServer,
  TARGET,
  errorCodes,
  finishUpload,
  getManifest,
  httpRequest,
  makeTinyImage,
  patchChunk,
  patternBytes,
  pool,
  rangeToOffset,
  readOciImage,
  requireTools,
  sha256,
  show,
  skopeoCopy,
  sleep,
  startTarget,
  startUpload,
  tempDir,
  verifyOciLayout,
} from './harness.js';

const CHUNK = 256 * 1024;
/** temp/rename-aside names: Distribution-style *.tmp-* and Wharf's name~tmp~hex / name~deleting~hex */
const TEMP_NAME = /\.tmp-|~tmp~|~deleting~/;
const UPLOAD_SIZE = 2 * 1024 * 1024;

interface Interrupted {
  kind: 'idle' | 'in-flight';
  /** how the in-flight data is sent: PATCH (chunked) or PUT ?digest= (monolithic) */
  method: 'PATCH' | 'PUT';
  repo: string;
  data: Buffer;
  digest: string;
  /** the Location returned by the last acknowledged PATCH */
  location: string;
  /** bytes the registry acknowledged (202) */
  acked: number;
  /** bytes written to the socket, acknowledged or not */
  sent: number;
}

/** A PATCH (or a monolithic PUT ?digest=) that streams the rest of the blob slowly, so the kill
 *  lands in the middle of it. */
function slowSend(u: Interrupted, stop: { stopped: boolean }): Promise<void> {
  return new Promise((resolve) => {
    const url = new URL(u.location);
    if (u.method === 'PUT') url.searchParams.set('digest', u.digest);
    const rest = u.data.subarray(u.acked);
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(rest.length),
    };
    if (u.method === 'PATCH') headers['content-range'] = `${u.acked}-${u.data.length - 1}`;
    const req = http.request({ host: url.hostname, port: url.port, method: u.method, path: url.pathname + url.search, headers });
    req.on('error', () => resolve());
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    let off = 0;
    const step = () => {
      if (stop.stopped || off >= rest.length) return;
      const piece = rest.subarray(off, off + 32 * 1024);
      off += piece.length;
      u.sent = u.acked + off;
      req.write(piece, () => setTimeout(step, 40));
    };
    step();
  });
}

describe('crash safety: kill -9 during uploads', { timeout: 300_000 }, () => {
  let reg: RegistryServer | undefined;
  after(async () => {
    await reg?.stop();
  });

  test('restart after kill -9 serves only consistent data and resumes or forgets uploads', async () => {
    requireTools('skopeo', 'umoci');
    const work = tempDir('crash');
    reg = await startTarget({ workDir: work });
    const { port, dataDir } = reg;
    const host = reg.host;

    // ---------------------------------------------------------------- before the crash
    const layout = path.join(work, 'src');
    const base = await makeTinyImage(layout, 'base', 1);
    const images: OciImage[] = [];
    for (let i = 0; i < 8; i++) images.push(await makeTinyImage(layout, `c${i}`, 4));
    await skopeoCopy(base.ref, `docker://${host}/crash/base:v1`);
    const expected = new Map<string, string>([['crash/base:v1', base.digest]]);
    images.forEach((img, i) => expected.set(`crash/img${i}:v1`, img.digest));

    // manifests that get deleted while the registry is killed
    const doomed = [0, 1, 2, 3].map((i) => `crash/del${i}`);
    await pool(doomed, 4, async (repo) => {
      await skopeoCopy(base.ref, `docker://${host}/${repo}:a`);
      await skopeoCopy(`docker://${host}/${repo}:a`, `docker://${host}/${repo}:b`);
    });
    doomed.forEach((repo) => expected.set(`${repo}:a`, base.digest).set(`${repo}:b`, base.digest));

    // 3 idle uploads (3 chunks acknowledged), 3 with a slow PATCH in flight, 2 with a slow monolithic PUT in flight
    const uploads: Interrupted[] = [];
    for (let i = 0; i < 8; i++) {
      const kind = i < 3 ? 'idle' : 'in-flight';
      const method = i < 6 ? 'PATCH' : 'PUT';
      const repo = `crash/${kind === 'idle' ? 'idle' : method === 'PATCH' ? 'live' : 'mono'}${i}`;
      const data = patternBytes(repo, UPLOAD_SIZE);
      let location = await startUpload(reg.url, repo);
      const chunks = kind === 'idle' ? 3 : method === 'PATCH' ? 1 : 0;
      for (let c = 0; c < chunks; c++) location = await patchChunk(location, data.subarray(c * CHUNK, (c + 1) * CHUNK), c * CHUNK);
      uploads.push({ kind, method, repo, data, digest: sha256(data), location, acked: chunks * CHUNK, sent: chunks * CHUNK });
    }

    // ---------------------------------------------------------------- the crash
    const stop = { stopped: false };
    const streams = uploads.filter((u) => u.kind === 'in-flight').map((u) => slowSend(u, stop));
    const started = Date.now();
    let firstDone = 0;
    const copies = images.map((img, i) =>
      skopeoCopy(img.ref, `docker://${host}/crash/img${i}:v1`, [], { allowFail: true }).then((r) => {
        firstDone ||= Date.now();
        return r;
      }),
    );
    // kill as soon as the first push completes (the others are then mid-flight), at most after 3 s;
    // the manifest deletes go out just before
    const deletes: Promise<unknown>[] = [];
    while (!firstDone && Date.now() - started < 3000) {
      if (!deletes.length && Date.now() - started > 300) {
        for (const repo of doomed) {
          deletes.push(httpRequest('DELETE', `${reg.url}/v2/${repo}/manifests/${base.digest}`).catch((e: Error) => e.message));
        }
      }
      await sleep(10);
    }
    await reg.kill();
    const killedAfter = Date.now() - started;
    stop.stopped = true;
    const results = await Promise.all(copies);
    await Promise.all(streams);
    await Promise.all(deletes);
    const ok = results.filter((r) => r.code === 0).length;
    console.log(`[crash] killed ${TARGET} after ${killedAfter} ms; ${ok}/8 skopeo pushes had completed`);
    const tmpFiles: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (TEMP_NAME.test(e.name)) tmpFiles.push(path.relative(dataDir, p));
        if (e.isDirectory()) walk(p);
      }
    };
    walk(dataDir);
    console.log(`[crash] temp files left in the data dir: ${tmpFiles.length}${tmpFiles.length ? ` (e.g. ${tmpFiles.slice(0, 3).join(', ')})` : ''}`);
    assert.ok(deletes.length, 'the manifest deletes were not sent before the kill');

    // ---------------------------------------------------------------- restart on the same dir and port
    reg = await startTarget({ workDir: work, dataDir, port });
    const url = reg.url;
    const problems: string[] = [];

    // repositories and tags
    const cat = await httpRequest('GET', `${url}/v2/_catalog?n=1000`);
    assert.equal(cat.status, 200, show(cat));
    const repos: string[] = JSON.parse(cat.body.toString('utf8')).repositories ?? [];
    for (const r of repos) {
      if (TEMP_NAME.test(r) || !/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(r)) {
        problems.push(`catalog lists a bogus repository name: ${JSON.stringify(r)}`);
      }
    }
    const allRepos = [
      ...new Set([...repos, 'crash/base', ...doomed, ...images.map((_, i) => `crash/img${i}`), ...uploads.map((u) => u.repo)]),
    ];
    const tagged: { repo: string; tag: string }[] = [];
    for (const repo of allRepos) {
      const r = await httpRequest('GET', `${url}/v2/${repo}/tags/list`);
      if (r.status === 404) continue;
      if (r.status !== 200) {
        problems.push(`tags list failed: ${show(r)}`);
        continue;
      }
      for (const tag of JSON.parse(r.body.toString('utf8')).tags ?? []) {
        if (TEMP_NAME.test(tag)) problems.push(`temp file visible as a tag: ${repo}:${tag}`);
        else tagged.push({ repo, tag });
      }
    }
    assert.ok(
      tagged.some((t) => t.repo === 'crash/base' && t.tag === 'v1'),
      `crash/base:v1, pushed completely before the kill, is gone: tags ${JSON.stringify(tagged)}`,
    );
    await pool(tagged, 4, async ({ repo, tag }) => {
      const out = path.join(work, `pulled-${repo.replace(/\//g, '_')}-${tag}`);
      const r = await skopeoCopy(`docker://${reg!.host}/${repo}:${tag}`, `oci:${out}:${tag}`, [], { allowFail: true });
      if (r.code !== 0) {
        problems.push(`${repo}:${tag} is listed but does not pull: ${r.stderr.trim().split('\n').pop()}`);
        return;
      }
      try {
        await verifyOciLayout(out);
      } catch (e) {
        problems.push(`${repo}:${tag}: ${(e as Error).message}`);
      }
      const want = expected.get(`${repo}:${tag}`);
      const got = readOciImage(out, tag).digest;
      if (want && got !== want) problems.push(`${repo}:${tag} resolves to ${got}, but only ${want} was pushed there`);
      fs.rmSync(out, { recursive: true, force: true });
    });
    console.log(`[crash] after restart: ${repos.length} repositories, ${tagged.length} tags, all checked`);

    // blobs: known ones in their repositories, plus every blob in the data dir through every repository
    const known = new Set<string>();
    const pairs: { repo: string; digest: string }[] = [];
    const addPair = (repo: string, digest: string) => {
      const k = `${repo}@${digest}`;
      if (!known.has(k)) {
        known.add(k);
        pairs.push({ repo, digest });
      }
    };
    base.blobs.forEach((d) => addPair('crash/base', d));
    images.forEach((img, i) => img.blobs.forEach((d) => addPair(`crash/img${i}`, d)));
    uploads.forEach((u) => addPair(u.repo, u.digest));
    const blobRoot = path.join(dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256');
    const stored: string[] = [];
    if (fs.existsSync(blobRoot)) {
      for (const pre of fs.readdirSync(blobRoot)) {
        for (const hex of fs.readdirSync(path.join(blobRoot, pre))) if (/^[0-9a-f]{64}$/.test(hex)) stored.push(`sha256:${hex}`);
      }
    }
    for (const repo of allRepos) for (const d of stored) addPair(repo, d);
    let served = 0;
    await pool(pairs, 6, async ({ repo, digest }) => {
      const head = await httpRequest('HEAD', `${url}/v2/${repo}/blobs/${digest}`);
      if (head.status === 404) return;
      if (head.status !== 200) {
        problems.push(`unexpected status: ${show(head)}`);
        return;
      }
      const get = await httpRequest('GET', `${url}/v2/${repo}/blobs/${digest}`);
      if (get.status !== 200) {
        problems.push(`HEAD said 200 but ${show(get)}`);
        return;
      }
      served++;
      const got = sha256(get.body);
      if (got !== digest) problems.push(`GET ${repo}/blobs/${digest} -> 200 with content hashing to ${got} (${get.body.length} bytes)`);
      const len = head.headers.get('content-length');
      if (len !== null && Number(len) !== get.body.length) {
        problems.push(`HEAD ${repo}/blobs/${digest} Content-Length ${len}, but GET returned ${get.body.length} bytes`);
      }
    });
    console.log(`[crash] ${pairs.length} (repository, blob) pairs probed, ${served} served and verified`);

    // the deleted manifests: either still there in full, or gone
    for (const repo of doomed) {
      const m = await getManifest(url, repo, base.digest);
      if (m.status === 200 && sha256(m.body) !== base.digest) problems.push(`manifest deleted during the crash is corrupt: ${show(m)}`);
      if (m.status !== 200 && m.status !== 404) problems.push(`manifest deleted during the crash: ${show(m)}`);
    }

    // interrupted uploads
    const outcomes: string[] = [];
    for (const u of uploads) {
      const what = `${u.kind} upload in ${u.repo} (acknowledged ${u.acked}, sent ${u.sent} of ${u.data.length} bytes)`;
      const status = await httpRequest('GET', u.location);
      outcomes.push(`${u.repo}: ${status.status}${status.headers.get('range') ? ` Range ${status.headers.get('range')}` : ''} ${errorCodes(status).join(',')}`.trim());
      if (status.status === 404) {
        // Distribution 2.8 answers 404 BLOB_UPLOAD_INVALID (and cancels the upload) when the stored size
        // no longer matches the offset recorded in the Location's _state: the in-flight case
        const allowed = u.kind === 'idle' ? ['BLOB_UPLOAD_UNKNOWN'] : ['BLOB_UPLOAD_UNKNOWN', 'BLOB_UPLOAD_INVALID'];
        if (!errorCodes(status).some((c) => allowed.includes(c))) {
          problems.push(`${what}: 404 without ${allowed.join(' or ')}: ${show(status)}`);
        }
        continue;
      }
      if (status.status !== 204) {
        problems.push(`${what}: upload status should be 204 with a Range, or 404 BLOB_UPLOAD_UNKNOWN; got ${show(status)}`);
        continue;
      }
      // "0-0" is what Distribution sends for an empty upload (and would also mean 1 byte; ours never has 1)
      const offset = status.headers.get('range') === '0-0' ? 0 : rangeToOffset(status.headers.get('range'));
      if (offset === null || offset < u.acked || offset > u.sent) {
        problems.push(`${what}: Range should be 0-N with ${u.acked} <= N+1 <= ${u.sent}; got ${show(status)}`);
        continue;
      }
      const resume = async (): Promise<HttpResult> => {
        let loc = u.location;
        if (offset < u.data.length) loc = await patchChunk(loc, u.data.subarray(offset), offset);
        return finishUpload(loc, u.digest);
      };
      let put: HttpResult;
      try {
        put = await resume();
      } catch (e) {
        problems.push(`${what}: resuming at ${offset} failed: ${(e as Error).message}`);
        continue;
      }
      if (put.status !== 201) {
        problems.push(`${what}: PUT after resuming at ${offset} should give 201; got ${show(put)}`);
        continue;
      }
      const blob = await httpRequest('GET', `${url}/v2/${u.repo}/blobs/${u.digest}`);
      if (blob.status !== 200 || sha256(blob.body) !== u.digest) problems.push(`${what}: resumed blob is wrong: ${show(blob)}`);
    }

    console.log(`[crash] interrupted uploads after restart (GET status): ${outcomes.join('; ')}`);
    assert.deepEqual(problems, [], `inconsistencies after kill -9 and restart:\n${problems.join('\n')}\n--- log ---\n${reg.logTail(12)}`);

    // the registry takes the same pushes again
    await pool(images, 4, (img, i) => skopeoCopy(img.ref, `docker://${reg!.host}/crash/img${i}:v1`));
    const out = path.join(work, 'pulled-after');
    await skopeoCopy(`docker://${reg.host}/crash/img7:v1`, `oci:${out}:v1`);
    assert.equal(readOciImage(out, 'v1').digest, images[7].digest);
    await verifyOciLayout(out);
  });
});
