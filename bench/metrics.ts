// The HTTP-level benchmarks: 1 GiB transfers, request rates, many small uploads, concurrent image pushes.

import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type http from 'node:http';
import { makeBigBlob, makeSmallBlobs, imageManifest, MiB, type BigBlob, type SmallBlob } from './data.js';
import {
  newAgent,
  pushBigMonolithic,
  pushBigChunked,
  pullBlob,
  pushSmallBlob,
  putManifest,
  headBlob,
  pool,
  MANIFEST_ACCEPT,
} from './http.js';
import { runLoad } from './loadgen.js';
import type { ServerKind } from './servers.js';
import type { Bench, Ctx, Measurement } from './types.js';

/** Stable seeds: same data for both servers within a round, different data across rounds and benchmarks. */
const seedOf = (bench: string, round: number, extra = 0): number => {
  let h = 2166136261;
  for (const c of `${bench}/${round}/${extra}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return h >>> 0;
};

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

/** Flush dirty pages so one server's write-back does not slow the next server's measurement. */
function settle(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

/** Time `fn` while watching the server's RSS; record growth under `key`. */
async function withRssWindow<T>(ctx: Ctx, kind: ServerKind, key: string, fn: () => Promise<T>): Promise<{ result: T; growth: number }> {
  const rss = ctx.servers[kind].rss;
  const base = rss.startWindow();
  const result = await fn();
  const growth = Math.max(0, rss.endWindow() - base);
  const g = ctx.rssGrowth[kind];
  g[key] = Math.max(g[key] ?? 0, growth);
  return { result, growth };
}

function bigPush(name: string, label: string, chunked: boolean): Bench {
  let blob: BigBlob | undefined;
  return {
    name,
    rows: [{ name, label, unit: 'MB/s', better: 'higher', target: 2.0 }],
    async beforeRound(ctx, round) {
      // A fresh blob per round, so every push is a first write on both servers.
      blob = makeBigBlob(ctx.sizeBytes, seedOf(name, round));
    },
    async measure(ctx, kind, round): Promise<Measurement> {
      const srv = ctx.servers[kind];
      const agent = newAgent(1);
      settle();
      const { result: ms, growth } = await withRssWindow(ctx, kind, name, async () => {
        const t0 = performance.now();
        if (chunked) await pushBigChunked(agent, srv.base, `bench/${name}`, blob!);
        else await pushBigMonolithic(agent, srv.base, `bench/${name}`, blob!);
        return performance.now() - t0;
      });
      agent.destroy();
      return { values: { [name]: mbps(ctx.sizeBytes, ms) }, detail: { ms, rssGrowthMB: growth / 1e6, round } };
    },
    async cleanup() {
      blob = undefined;
    },
  };
}

function bigPull(size: string): Bench {
  const name = 'pull';
  let blob: BigBlob | undefined;
  return {
    name,
    rows: [{ name, label: `${size} pull`, unit: 'MB/s', better: 'higher', target: 1.0 }],
    async prepare(ctx, kind) {
      blob ??= makeBigBlob(ctx.sizeBytes, seedOf(name, 0));
      const agent = newAgent(1);
      await pushBigMonolithic(agent, ctx.servers[kind].base, 'bench/pull', blob);
      agent.destroy();
    },
    async measure(ctx, kind): Promise<Measurement> {
      const srv = ctx.servers[kind];
      const agent = newAgent(1);
      const { result, growth } = await withRssWindow(ctx, kind, name, async () => {
        const t0 = performance.now();
        const n = await pullBlob(agent, srv.base, 'bench/pull', blob!.digest);
        return { ms: performance.now() - t0, n };
      });
      agent.destroy();
      if (result.n !== ctx.sizeBytes) throw new Error(`${srv.spec.label}: pulled ${result.n} bytes, expected ${ctx.sizeBytes}`);
      return { values: { [name]: mbps(ctx.sizeBytes, result.ms) }, detail: { ms: result.ms, rssGrowthMB: growth / 1e6 } };
    },
    async cleanup() {
      blob = undefined;
    },
  };
}

function headRate(concurrency: number): Bench {
  const name = `head-${concurrency}`;
  let blob: SmallBlob | undefined;
  return {
    name,
    rows: [{ name, label: `blob HEAD c=${concurrency}`, unit: 'req/s', better: 'higher', target: 3.0 }],
    async prepare(ctx, kind) {
      blob ??= makeSmallBlobs(1, 4096, seedOf('head', 0))[0]!;
      const agent = newAgent(1);
      await pushSmallBlob(agent, ctx.servers[kind].base, 'bench/head', blob);
      const st = await headBlob(agent, ctx.servers[kind].base, 'bench/head', blob.digest);
      agent.destroy();
      if (st !== 200) throw new Error(`HEAD after push answered ${st}`);
    },
    async measure(ctx, kind): Promise<Measurement> {
      const srv = ctx.servers[kind];
      const r = await runLoad({
        host: '127.0.0.1',
        port: srv.port,
        method: 'HEAD',
        path: `/v2/bench/head/blobs/${blob!.digest}`,
        concurrency,
        durationMs: ctx.durationMs,
        warmupMs: ctx.warmupMs,
      });
      if (r.errors > 0) ctx.log(`  ! ${srv.spec.label} ${name}: ${r.errors} errors ${JSON.stringify(r.statuses)}`);
      return { values: { [name]: r.rps }, detail: r };
    },
  };
}

function manifestRate(concurrency: number): Bench {
  const name = `manifest-${concurrency}`;
  return {
    name,
    rows: [{ name, label: `manifest GET c=${concurrency}`, unit: 'req/s', better: 'higher', target: 3.0 }],
    async prepare(ctx, kind) {
      const base = ctx.servers[kind].base;
      const layers = makeSmallBlobs(2, 64 * 1024, seedOf('manifest', 0));
      const img = imageManifest(layers, 1);
      const agent = newAgent(4);
      for (const b of [...layers, img.config]) await pushSmallBlob(agent, base, 'bench/manifest', b);
      await putManifest(agent, base, 'bench/manifest', 'latest', img.manifest, img.mediaType);
      agent.destroy();
    },
    async measure(ctx, kind): Promise<Measurement> {
      const srv = ctx.servers[kind];
      const r = await runLoad({
        host: '127.0.0.1',
        port: srv.port,
        method: 'GET',
        path: '/v2/bench/manifest/manifests/latest',
        headers: { Accept: MANIFEST_ACCEPT },
        concurrency,
        durationMs: ctx.durationMs,
        warmupMs: ctx.warmupMs,
      });
      if (r.errors > 0) ctx.log(`  ! ${srv.spec.label} ${name}: ${r.errors} errors ${JSON.stringify(r.statuses)}`);
      return { values: { [name]: r.rps }, detail: r };
    },
  };
}

function smallUploads(): Bench {
  const name = 'small-uploads';
  const blobs: Partial<Record<ServerKind, SmallBlob[]>> = {};
  return {
    name,
    rows: [{ name, label: '4 KiB uploads (POST+PUT)', unit: 'uploads/s', better: 'higher', target: 2.0 }],
    async beforeRound(ctx, round) {
      // Each server gets its own distinct blobs every round (nothing is ever already present).
      blobs.distribution = makeSmallBlobs(ctx.smallCount, 4096, seedOf(name, round, 1));
      blobs.wharf = makeSmallBlobs(ctx.smallCount, 4096, seedOf(name, round, 2));
    },
    async measure(ctx, kind): Promise<Measurement> {
      const srv = ctx.servers[kind];
      const list = blobs[kind]!;
      const agent = newAgent(ctx.smallConcurrency);
      const t0 = performance.now();
      await pool(list, ctx.smallConcurrency, (b) => pushSmallBlob(agent, srv.base, 'bench/small', b));
      const ms = performance.now() - t0;
      agent.destroy();
      return { values: { [name]: list.length / (ms / 1000) }, detail: { ms, count: list.length } };
    },
    async cleanup() {
      delete blobs.distribution;
      delete blobs.wharf;
    },
  };
}

interface Img {
  repo: string;
  blobs: SmallBlob[];
  manifest: Buffer;
  mediaType: string;
}

function makeImages(count: number, layers: number, layerBytes: number, seed: number): Img[] {
  const out: Img[] = [];
  for (let i = 0; i < count; i++) {
    const ls = makeSmallBlobs(layers, layerBytes, (seed + i * 7919) >>> 0);
    const m = imageManifest(ls, seed + i);
    out.push({ repo: `bench/image-${i}`, blobs: [...ls, m.config], manifest: m.manifest, mediaType: m.mediaType });
  }
  return out;
}

async function pushImage(agent: http.Agent, base: string, img: Img): Promise<void> {
  await Promise.all(img.blobs.map((b) => pushSmallBlob(agent, base, img.repo, b)));
  await putManifest(agent, base, img.repo, 'latest', img.manifest, img.mediaType);
}

function concurrentImagePushes(): Bench {
  const name = 'image-push-8';
  const images: Partial<Record<ServerKind, Img[]>> = {};
  const layerMiB = 4;
  return {
    name,
    rows: [{ name, label: `8 concurrent image pushes (3x${layerMiB} MiB)`, unit: 's', better: 'lower', target: 0.8 }],
    async beforeRound(_ctx, round) {
      images.distribution = makeImages(8, 3, layerMiB * MiB, seedOf(name, round, 1));
      images.wharf = makeImages(8, 3, layerMiB * MiB, seedOf(name, round, 2));
    },
    async measure(ctx, kind): Promise<Measurement> {
      const srv = ctx.servers[kind];
      const agent = newAgent(32);
      const t0 = performance.now();
      await Promise.all(images[kind]!.map((img) => pushImage(agent, srv.base, img)));
      const ms = performance.now() - t0;
      agent.destroy();
      return { values: { [name]: ms / 1000 }, detail: { ms } };
    },
    async cleanup() {
      delete images.distribution;
      delete images.wharf;
    },
  };
}

export function httpBenches(size: string): Bench[] {
  return [
    bigPush('push-mono', `${size} monolithic push`, false),
    bigPush('push-chunked', `${size} chunked push (16 MiB)`, true),
    bigPull(size),
    headRate(16),
    headRate(64),
    manifestRate(16),
    manifestRate(64),
    smallUploads(),
    concurrentImagePushes(),
  ];
}
