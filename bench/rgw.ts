// Issue #4's object-store benchmark: both registries on the s3 driver against one Ceph RGW.
//
// Each measurement starts a fresh server of the kind under test on a new, empty bucket of the same
// RGW (default driver settings on both: Distribution's 10 MiB chunksize, multipart above it), then
// times a 1 GiB monolithic push, a 1 GiB pull, and skopeo copies of the 5-layer image in and out.
// `storage.redirect.disable: true` on both: with redirects on, a pull is a 307 and the client reads
// from RGW directly, so both registries would measure RGW itself (ratio 1 by construction).
// The bucket is removed and RGW's garbage collector run after each measurement: RGW otherwise keeps
// deleted data for hours, and its memstore OSD holds everything in RAM.
//
// Two info rows bound what any registry can reach here (client, registry and RGW share 2 cores):
//   s3-pull-direct     the same client reading the same object straight from RGW (presigned GET):
//                      a registry that relays the bytes cannot be faster than this;
//   s3-skopeo-floor    skopeo copying the image between two local oci: layouts, no registry at all:
//                      skopeo's own hashing and writing, the floor under s3-skopeo-out.

import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { storageYaml } from '../test/e2e/storage-yaml.js';
import { startRgw, type Rgw } from '../test/storage/rgw.js';
import { makeBigBlob, MiB, type BigBlob } from './data.js';
import { newAgent, pullBlob, pushBigMonolithic, request } from './http.js';
import { startServer, stopServer, type ServerKind } from './servers.js';
import { ensureImage } from './skopeo.js';
import type { Bench, Ctx, Measurement } from './types.js';

const run = promisify(execFile);
const stopScript = resolve(import.meta.dirname, '../../scripts/services/ceph-rgw-stop.sh');
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

/** A private RGW for the bench (own state dir and ports), so test runs and the bench never share one. */
async function benchRgw(): Promise<{ rgw: Rgw; conf: string }> {
  const dir = process.env.BENCH_RGW_DIR || '/tmp/wharf-bench-rgw';
  Object.assign(process.env, {
    WHARF_RGW_DIR: dir,
    RGW_PORT: process.env.BENCH_RGW_PORT || '7490',
    CEPH_MON_PORT: process.env.BENCH_CEPH_MON_PORT || '3390',
    // One measurement holds at most ~2.5 GiB (the upload, its server-side copy, the skopeo image).
    CEPH_MEMSTORE_BYTES: String(6 * 1024 ** 3),
  });
  return { rgw: await startRgw(), conf: join(dir, 'ceph.conf') };
}

function storageLines(rgw: Rgw, bucket: string): string[] {
  return [...storageYaml('redirect', { disable: true }), ...storageYaml('s3', rgw.options(bucket, { v4auth: true }))];
}

export function rgwBench(sizeLabel: string): Bench {
  let rgw: Rgw | undefined;
  let conf = '';
  let image = '';
  let blob: BigBlob | undefined;
  return {
    name: 's3',
    rows: [
      { name: 's3-push', label: `${sizeLabel} push, s3 on Ceph RGW`, unit: 'MB/s', better: 'higher', target: 1.2 },
      { name: 's3-pull', label: `${sizeLabel} pull, s3 on Ceph RGW`, unit: 'MB/s', better: 'higher', target: 1.2 },
      { name: 's3-skopeo-in', label: 'skopeo copy oci: -> docker://, s3', unit: 's', better: 'lower', target: 1 / 1.2 },
      { name: 's3-skopeo-out', label: 'skopeo copy docker:// -> oci:, s3', unit: 's', better: 'lower', target: 1 / 1.2 },
      { name: 's3-pull-direct', label: `${sizeLabel} read straight from RGW (ceiling of pull)`, unit: 'MB/s', better: 'higher', target: 1, info: true },
      { name: 's3-skopeo-floor', label: 'skopeo copy oci: -> oci:, no registry (floor of out)', unit: 's', better: 'lower', target: 1, info: true },
    ],
    async beforeRound(ctx, round) {
      if (!rgw) ({ rgw, conf } = await benchRgw());
      image ||= await ensureImage(ctx);
      blob = makeBigBlob(ctx.sizeBytes, 0x53335300 + round);
    },
    async measure(ctx: Ctx, kind: ServerKind, round: number): Promise<Measurement> {
      const bucket = await rgw!.createBucket(`bench-${kind}-${round}`);
      const srv = await startServer(ctx.specs[kind], { storage: storageLines(rgw!, bucket) });
      const out = await mkdtemp(join(ctx.scratchDir, 's3-skopeo-'));
      const agent = newAgent(1);
      try {
        const t0 = performance.now();
        await pushBigMonolithic(agent, srv.base, 'bench/s3', blob!);
        const t1 = performance.now();
        const n = await pullBlob(agent, srv.base, 'bench/s3', blob!.digest);
        const t2 = performance.now();
        if (n !== ctx.sizeBytes) throw new Error(`${srv.spec.label}: pulled ${n} bytes, expected ${ctx.sizeBytes}`);
        const ref = `docker://${srv.hostPort}/bench/s3-skopeo:r${round}`;
        const skopeo = (args: string[]): Promise<unknown> => run('skopeo', ['copy', '--quiet', '--insecure-policy', ...args], { maxBuffer: 1 << 20 });
        await skopeo(['--dest-tls-verify=false', `oci:${image}:bench`, ref]);
        const t3 = performance.now();
        await skopeo(['--src-tls-verify=false', ref, `oci:${join(out, 'oci')}:bench`]);
        const t4 = performance.now();
        const hex = blob!.digest.slice('sha256:'.length);
        const key = `docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
        const url = await getSignedUrl(rgw!.client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 600 });
        const t5 = performance.now();
        const direct = await request({ agent, method: 'GET', url, discard: true });
        const t6 = performance.now();
        if (direct.received !== ctx.sizeBytes) throw new Error(`RGW direct read: ${direct.status}, ${direct.received} bytes`);
        await skopeo([`oci:${image}:bench`, `oci:${join(out, 'floor')}:bench`]);
        const t7 = performance.now();
        ctx.extraPeak[kind] = Math.max(ctx.extraPeak[kind], srv.rss.peak);
        return {
          values: {
            's3-push': mbps(ctx.sizeBytes, t1 - t0),
            's3-pull': mbps(ctx.sizeBytes, t2 - t1),
            's3-skopeo-in': (t3 - t2) / 1000,
            's3-skopeo-out': (t4 - t3) / 1000,
            's3-pull-direct': mbps(ctx.sizeBytes, t6 - t5),
            's3-skopeo-floor': (t7 - t6) / 1000,
          },
          detail: { bucket, peakRssMB: srv.rss.peak / 1e6, imageMB: (5 * ctx.skopeoLayerMB * MiB) / 1e6 },
        };
      } finally {
        agent.destroy();
        await stopServer(srv);
        await rm(out, { recursive: true, force: true });
        await rgw!.removeBucket(bucket);
        await run('radosgw-admin', ['-c', conf, 'gc', 'process', '--include-all'], { timeout: 120_000 }).catch((e: Error) =>
          ctx.log(`  radosgw-admin gc process failed (memory may fill): ${e.message.split('\n')[0]}`),
        );
      }
    },
    async cleanup() {
      blob = undefined;
      if (rgw) await run('bash', [stopScript, process.env.WHARF_RGW_DIR!, '--purge'], { timeout: 120_000 }).catch(() => undefined);
    },
  };
}
