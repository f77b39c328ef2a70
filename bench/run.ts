// `npm run bench`: Wharf vs CNCF Distribution 2.8, measured alternately on this machine.
//
// Env knobs:
//   BENCH_SIZE_MB      size of the big blob transfers (default 1024)
//   BENCH_ROUNDS       rounds per metric, median reported (default 3)
//   BENCH_ONLY         comma list of benchmark or row names (push-mono, push-chunked, pull, head,
//                      head-16, head-64, manifest, manifest-16, manifest-64, small-uploads,
//                      skopeo, image-push-8, s3 (push/pull/skopeo on Ceph RGW), proxy (pull-through cache:
//                      proxy-cold, proxy-warm)); default: all
//   BENCH_DURATION_S   measured seconds per request-rate sample (default 3; plus 0.5 s warm-up)
//   BENCH_SMALL_COUNT  number of 4 KiB uploads (default 2000), BENCH_SMALL_CONCURRENCY (default 64)
//   BENCH_SKOPEO_LAYER_MB  size of each of the 5 skopeo image layers (default 40)
//   BENCH_WHARF_CMD / BENCH_DIST_CMD  override server commands (config path is appended),
//                      e.g. BENCH_WHARF_CMD="docker-registry serve" to check the harness itself
//   BENCH_OUT          where to write the JSON results (default: a temp path, printed)
//   BENCH_CACHE_DIR    where the umoci-built image is cached (default: $TMPDIR/wharf-bench-cache)

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authBench } from './auth.js';
import { gcBench } from './gc.js';
import { httpBenches } from './metrics.js';
import { proxyBench } from './proxy.js';
import { renderTable, summarize, type RowResult } from './report.js';
import { rgwBench } from './rgw.js';
import { repoRootFrom, serverSpecs, startServer, stopAll, stopServer, type ServerKind } from './servers.js';
import { skopeoBench } from './skopeo.js';
import { KINDS, type Bench, type Ctx } from './types.js';

const num = (v: string | undefined, d: number): number => {
  const n = Number(v);
  return v !== undefined && v !== '' && Number.isFinite(n) && n > 0 ? n : d;
};

function selected(all: Bench[], only: string | undefined): Bench[] {
  if (!only) return all;
  const want = only.split(',').map((s) => s.trim()).filter(Boolean);
  const hit = (n: string): boolean => want.some((w) => n === w || n.startsWith(w + '-'));
  const out = all.filter((b) => hit(b.name) || b.rows.some((r) => hit(r.name)));
  if (!out.length) throw new Error(`BENCH_ONLY=${only} matches nothing; names: ${all.flatMap((b) => b.rows.map((r) => r.name)).join(', ')}`);
  return out;
}

function sizeLabel(bytes: number): string {
  return bytes % (1024 * 1024 * 1024) === 0 ? `${bytes / 1024 ** 3} GiB` : `${bytes / 1024 ** 2} MiB`;
}

async function main(): Promise<number> {
  const started = Date.now();
  const loadavgAtStart = (await import('node:os')).loadavg();
  const log = (m: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${m}`);
  const sizeBytes = Math.round(num(process.env.BENCH_SIZE_MB, 1024) * 1024 * 1024);
  const specs = serverSpecs(repoRootFrom(import.meta.url));
  const scratchDir = await mkdtemp(join(tmpdir(), 'wharf-bench-scratch-'));
  const benches = selected([...httpBenches(sizeLabel(sizeBytes)), skopeoBench(), authBench(), gcBench(), rgwBench(sizeLabel(sizeBytes)), proxyBench()], process.env.BENCH_ONLY);

  const cleanup = async (): Promise<void> => {
    await stopAll();
    await rm(scratchDir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping servers`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  log(`starting servers: Distribution = ${specs.distribution.command.join(' ')}; Wharf = ${specs.wharf.command.join(' ')}`);
  const servers = {} as Ctx['servers'];
  for (const k of KINDS) servers[k] = await startServer(specs[k]);
  for (const k of KINDS) log(`  ${specs[k].label}: ${servers[k].base} pid ${servers[k].pid} root ${servers[k].root}`);

  const ctx: Ctx = {
    sizeBytes,
    rounds: Math.round(num(process.env.BENCH_ROUNDS, 3)),
    durationMs: num(process.env.BENCH_DURATION_S, 3) * 1000,
    warmupMs: 500,
    smallCount: Math.round(num(process.env.BENCH_SMALL_COUNT, 2000)),
    smallConcurrency: Math.round(num(process.env.BENCH_SMALL_CONCURRENCY, 64)),
    skopeoLayerMB: num(process.env.BENCH_SKOPEO_LAYER_MB, 40),
    servers,
    specs,
    cacheDir: process.env.BENCH_CACHE_DIR || join(tmpdir(), 'wharf-bench-cache'),
    scratchDir,
    rssGrowth: { distribution: {}, wharf: {} },
    extraPeak: { distribution: 0, wharf: 0 },
    log,
  };
  log(`size ${sizeLabel(sizeBytes)}, ${ctx.rounds} rounds, benches: ${benches.map((b) => b.name).join(', ')}`);

  const results: RowResult[] = [];
  const details: Record<string, unknown[]> = {};
  for (const b of benches) {
    const rows = b.rows.map((def): RowResult => ({ def, samples: { distribution: [], wharf: [] }, info: def.info }));
    results.push(...rows);
    details[b.name] = [];
    try {
      log(`${b.name}: prepare`);
      for (const k of KINDS) await ensureAlive(ctx, k).then(() => b.prepare?.(ctx, k));
      for (let round = 0; round < ctx.rounds; round++) {
        await b.beforeRound?.(ctx, round);
        // ABBA order: Distribution first on even rounds, Wharf first on odd ones.
        const order: ServerKind[] = round % 2 === 0 ? ['distribution', 'wharf'] : ['wharf', 'distribution'];
        for (const k of order) {
          await ensureAlive(ctx, k);
          const m = await b.measure(ctx, k, round);
          for (const r of rows) {
            const v = m.values[r.def.name];
            if (v !== undefined) r.samples[k].push(v);
          }
          details[b.name]!.push({ server: k, round, values: m.values, detail: m.detail });
          const shown = Object.entries(m.values).map(([n, v]) => `${n}=${v.toFixed(2)}`).join(' ');
          log(`  round ${round + 1}/${ctx.rounds} ${specs[k].label.padEnd(12)} ${shown}`);
        }
      }
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      log(`  ${b.name} FAILED: ${msg}`);
      for (const r of rows) r.error = msg.split('\n')[0];
    } finally {
      await b.cleanup?.(ctx);
    }
  }

  // Memory rows.
  const peak = (k: ServerKind): number => Math.max(servers[k].rss.peak, ctx.extraPeak[k]) / 1e6;
  results.push({
    def: { name: 'peak-rss', label: 'peak server RSS', unit: 'MB', better: 'lower', target: 1 },
    samples: { distribution: [peak('distribution')], wharf: [peak('wharf')] },
    info: true,
  });
  const growthKeys = Object.keys(ctx.rssGrowth.wharf).concat(Object.keys(ctx.rssGrowth.distribution));
  if (growthKeys.length) {
    const worst = (k: ServerKind): number => Math.max(0, ...Object.values(ctx.rssGrowth[k])) / 1e6;
    results.push({
      def: { name: 'rss-growth', label: `RSS growth during ${sizeLabel(sizeBytes)} transfers (worst)`, unit: 'MB', better: 'lower', target: 1 },
      samples: { distribution: [worst('distribution')], wharf: [worst('wharf')] },
      absolute: { max: 10, text: 'Wharf <= 10 MB' },
    });
  }

  const summaries = results.map(summarize);
  const table = renderTable(summaries);
  const doc = {
    date: new Date().toISOString(),
    machine: { node: process.version, cpus: (await import('node:os')).cpus().length, loadavgAtStart, loadavgAtEnd: (await import('node:os')).loadavg() },
    settings: {
      sizeBytes,
      rounds: ctx.rounds,
      durationMs: ctx.durationMs,
      smallCount: ctx.smallCount,
      smallConcurrency: ctx.smallConcurrency,
      skopeoLayerMB: ctx.skopeoLayerMB,
      commands: { distribution: specs.distribution.command, wharf: specs.wharf.command },
    },
    results: summaries,
    rssGrowthMB: Object.fromEntries(KINDS.map((k) => [k, Object.fromEntries(Object.entries(ctx.rssGrowth[k]).map(([n, v]) => [n, v / 1e6]))])),
    details,
    table,
  };
  const outPath = process.env.BENCH_OUT || join(tmpdir(), `wharf-bench-results-${Date.now()}.json`);
  await writeFile(outPath, JSON.stringify(doc, null, 2) + '\n');

  await cleanup();
  console.log('');
  console.log(table);
  console.log('');
  for (const k of KINDS) {
    const g = Object.entries(ctx.rssGrowth[k]).map(([n, v]) => `${n} ${(v / 1e6).toFixed(1)} MB`);
    if (g.length) console.log(`worst RSS growth, ${specs[k].label}: ${g.join(', ')}`);
  }
  const cpu = Object.values(details)
    .flat()
    .map((d) => (d as { detail?: { clientCpuPct?: number } }).detail?.clientCpuPct)
    .filter((v): v is number => typeof v === 'number');
  if (cpu.length) console.log(`load generator CPU during request-rate samples: max ${Math.max(...cpu).toFixed(0)}% of one core`);
  console.log(`load average at end: ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')} (2 cores; other users' work skews absolute numbers)`);
  console.log('');
  console.log(`JSON results: ${outPath}  (total ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  return summaries.some((s) => s.error) ? 1 : 0;
}

/** If a server died (e.g. crashed in an earlier benchmark), replace it with a fresh one and say so. */
async function ensureAlive(ctx: Ctx, k: ServerKind): Promise<void> {
  const srv = ctx.servers[k];
  if (srv.alive) return;
  ctx.log(`  ! ${srv.spec.label} is not running (last output: ${srv.logTail.trim().slice(-500) || 'none'}); restarting it fresh`);
  ctx.extraPeak[k] = Math.max(ctx.extraPeak[k], srv.rss.peak);
  await stopServer(srv);
  ctx.servers[k] = await startServer(ctx.specs[k]);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (e) => {
    console.error(`bench: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    await stopAll();
    process.exitCode = 1;
  },
);
