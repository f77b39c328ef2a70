// Pull-through cache: Wharf and Distribution each as `proxy.remoteurl` in front of the same upstream
// (a docker-registry holding the five-layer skopeo image, ~200 MB of incompressible data):
//   proxy-cold  `skopeo copy docker://<cache>/… oci:…` through an empty cache (all from the upstream, stored);
//   proxy-warm  the same again into a fresh layout (all from the cache; the tag is still asked upstream);
//   proxy-skopeo-floor  the same skopeo pull from the upstream directly: skopeo's own share of proxy-warm;
//   proxy-http-cold, proxy-http-warm  the same pulls as plain HTTP (manifest by tag, then the five
//               layers at once, bodies counted and dropped): the servers without skopeo's own hashing and
//               writing, which dominate its times on this 2-core machine.
// Each pair starts a fresh cache server on empty storage.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { MANIFEST_ACCEPT, newAgent, pullBlob, request } from './http.js';
import { startServer, stopServer, type RunningServer, type ServerKind } from './servers.js';
import { ensureImage } from './skopeo.js';
import type { Bench, Ctx, Measurement } from './types.js';

const TAG = 'bench';
const REPO = 'bench/proxied';

function skopeo(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('skopeo', ['--insecure-policy', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-3000)));
    p.on('error', (e) => reject(new Error(`skopeo: ${e.message}`)));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`skopeo ${args.join(' ')} exited ${code}:\n${err}`))));
  });
}

/** The layer digests of the image's manifest in the OCI layout. */
function layersOf(layout: string): string[] {
  const blob = (digest: string) => JSON.parse(readFileSync(join(layout, 'blobs', ...digest.split(':')), 'utf8'));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  return (blob(index.manifests[0]!.digest) as { layers: { digest: string }[] }).layers.map((l) => l.digest);
}

/** Manifest by tag, then every layer at once over plain HTTP; seconds. */
async function httpPull(base: string, layers: string[]): Promise<number> {
  const agent = newAgent(layers.length);
  try {
    const t0 = performance.now();
    const m = await request({ agent, method: 'GET', url: `${base}/v2/${REPO}/manifests/${TAG}`, headers: { Accept: MANIFEST_ACCEPT }, discard: true });
    if (m.status !== 200) throw new Error(`GET manifest through the cache: ${m.status}`);
    await Promise.all(layers.map((d) => pullBlob(agent, base, REPO, d)));
    return (performance.now() - t0) / 1000;
  } finally {
    agent.destroy();
  }
}

export function proxyBench(): Bench {
  let upstream: RunningServer | undefined;
  let layers: string[] = [];
  return {
    name: 'proxy',
    rows: [
      { name: 'proxy-cold', label: 'pull through an empty cache (skopeo, 5 x layer)', unit: 's', better: 'lower', target: 1.0 },
      { name: 'proxy-warm', label: 'second pull through the cache (skopeo)', unit: 's', better: 'lower', target: 0.67 },
      { name: 'proxy-http-cold', label: 'pull through an empty cache (plain HTTP)', unit: 's', better: 'lower', target: 1.0 },
      { name: 'proxy-http-warm', label: 'second pull through the cache (plain HTTP)', unit: 's', better: 'lower', target: 0.67 },
      // The same skopeo pull straight from the upstream (a plain docker-registry, no cache in
      // between): skopeo's own floor, which bounds how far apart the two proxy-warm times can be.
      { name: 'proxy-skopeo-floor', label: 'skopeo pull from the upstream itself (floor)', unit: 's', better: 'lower', target: 1, info: true },
    ],
    async beforeRound(ctx: Ctx) {
      if (upstream) return;
      const image = await ensureImage(ctx);
      layers = layersOf(image);
      upstream = await startServer(ctx.specs.distribution);
      ctx.log(`  upstream: Distribution at ${upstream.base}; pushing the image`);
      await skopeo(['copy', '--quiet', '--dest-tls-verify=false', `oci:${image}:${TAG}`, `docker://${upstream.hostPort}/${REPO}:${TAG}`]);
    },
    async measure(ctx: Ctx, kind: ServerKind): Promise<Measurement> {
      const fresh = () => startServer(ctx.specs[kind], { extraYaml: `proxy:\n  remoteurl: ${upstream!.base}\n` });
      const values: Record<string, number> = {};
      let cache = await fresh();
      try {
        values['proxy-http-cold'] = await httpPull(cache.base, layers);
        values['proxy-http-warm'] = await httpPull(cache.base, layers);
      } finally {
        ctx.extraPeak[kind] = Math.max(ctx.extraPeak[kind], cache.rss.peak);
        await stopServer(cache);
      }
      cache = await fresh();
      const out = await mkdtemp(join(ctx.scratchDir, 'proxy-out-'));
      try {
        const pull = async (dir: string): Promise<number> => {
          const t0 = performance.now();
          await skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${cache.hostPort}/${REPO}:${TAG}`, `oci:${join(out, dir)}:${TAG}`]);
          return (performance.now() - t0) / 1000;
        };
        values['proxy-cold'] = await pull('cold');
        values['proxy-warm'] = await pull('warm');
        const t0 = performance.now();
        await skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${upstream!.hostPort}/${REPO}:${TAG}`, `oci:${join(out, 'floor')}:${TAG}`]);
        values['proxy-skopeo-floor'] = (performance.now() - t0) / 1000;
        ctx.extraPeak[kind] = Math.max(ctx.extraPeak[kind], cache.rss.peak);
        return { values, detail: { peakRssMB: cache.rss.peak / 1e6 } };
      } finally {
        await stopServer(cache);
        await rm(out, { recursive: true, force: true });
      }
    },
    async cleanup() {
      if (upstream) await stopServer(upstream);
      upstream = undefined;
    },
  };
}
