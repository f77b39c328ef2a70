// Offline garbage collection: `docker-registry garbage-collect` vs `wharf garbage-collect` on
// identical copies of one data directory with 10,000 manifests and 50,000 blobs (BENCH_GC_MANIFESTS
// scales it: blobs = 5 × manifests). The layout is written straight to disk once and cached; each
// round copies it (untimed) and times the collector, sampling its peak RSS.

import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { RssSampler, type ServerKind } from './servers.js';
import type { Bench, Ctx, Measurement } from './types.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const V2 = 'docker/registry/v2';

function put(root: string, rel: string, content: string): void {
  const file = join(root, rel);
  mkdirSync(file.slice(0, file.lastIndexOf('/')), { recursive: true });
  writeFileSync(file, content);
}

/**
 * 100 repositories; each manifest has a config and 2 layers (1 in 4 shares a base layer), so
 * manifests + configs + layers ≈ 4 × manifests blobs; unreferenced blobs bring it to 5 ×.
 */
function writeLayout(root: string, manifests: number): void {
  const blob = (content: string): string => {
    const hex = sha(content);
    put(root, `${V2}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`, content);
    return hex;
  };
  const link = (rel: string, hex: string) => put(root, rel, `sha256:${hex}`);
  let blobs = 0;
  for (let i = 0; i < manifests; i++) {
    const repo = `bench/repo${String(i % 100).padStart(3, '0')}`;
    const config = blob(`{"config":${i}}`);
    const layers = [blob(`layer-a-${i}`), blob(i % 4 === 0 ? `base-${i % 100}` : `layer-b-${i}`)];
    blobs += 3;
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${config}`, size: 12 },
      layers: layers.map((h) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${h}`, size: 10 })),
    });
    const m = blob(manifest);
    blobs += 1;
    for (const h of [config, ...layers]) link(`${V2}/repositories/${repo}/_layers/sha256/${h}/link`, h);
    link(`${V2}/repositories/${repo}/_manifests/revisions/sha256/${m}/link`, m);
    const tag = `t${i}`;
    link(`${V2}/repositories/${repo}/_manifests/tags/${tag}/current/link`, m);
    link(`${V2}/repositories/${repo}/_manifests/tags/${tag}/index/sha256/${m}/link`, m);
  }
  for (let j = 0; blobs < manifests * 5; j++, blobs++) blob(`orphan-${j}`);
}

function runTimed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; peakRss: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    const rss = new RssSampler(child.pid!, 20);
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = performance.now() - t0;
      rss.stop();
      if (code === 0) resolve({ ms, peakRss: rss.peak });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`));
    });
  });
}

export function gcBench(): Bench {
  const manifests = Number(process.env.BENCH_GC_MANIFESTS ?? 10_000);
  let layout = '';
  return {
    name: 'gc',
    rows: [
      { name: 'gc-time', label: `garbage-collect, ${manifests} manifests / ${manifests * 5} blobs`, unit: 's', better: 'lower', target: 0.5 },
      // The issue sets no memory target: the RSS is reported beside the time.
      { name: 'gc-rss', label: 'garbage-collect peak RSS', unit: 'MB', better: 'lower', target: 1, info: true },
    ],
    async beforeRound(ctx: Ctx) {
      layout = join(ctx.cacheDir, `gc-layout-${manifests}-v1`);
      if (!existsSync(join(layout, 'complete'))) {
        ctx.log(`  writing a ${manifests}-manifest layout in ${layout} (cached for later runs)`);
        await rm(layout, { recursive: true, force: true });
        writeLayout(join(layout, 'data'), manifests);
        await writeFile(join(layout, 'complete'), '');
      }
    },
    async measure(ctx: Ctx, kind: ServerKind, round: number): Promise<Measurement> {
      const dir = join(ctx.scratchDir, `gc-${kind}-${round}`);
      await mkdir(dir, { recursive: true });
      // cp -a: Node's recursive copy takes minutes for 100,000 small files.
      execFileSync('cp', ['-a', join(layout, 'data'), join(dir, 'data')]);
      execFileSync('sync');
      const config = join(dir, 'config.yml');
      await writeFile(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:0\n`);
      const spec = ctx.specs[kind];
      const env = spec.env;
      const [cmd, ...base] = spec.command;
      // Both print every marked blob; the output goes to /dev/null for both.
      const { ms, peakRss } = await runTimed(cmd!, [...base.filter((a) => a !== 'serve'), 'garbage-collect', config], env);
      // The device trims what rm frees (ext4 `discard`): let that finish before the next round.
      execFileSync('rm', ['-rf', dir]);
      execFileSync('sync');
      return { values: { 'gc-time': ms / 1000, 'gc-rss': peakRss / 1e6 }, detail: { ms, peakRss } };
    },
  };
}
