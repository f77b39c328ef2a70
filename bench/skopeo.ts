// `skopeo copy` in (oci: -> docker://) and out (docker:// -> oci:) of a five-layer image built with umoci.
//
// skopeo remembers where it has seen blobs (its blob-info cache) and would mount or skip them on
// later pushes, so every round uses a freshly started server (new empty root, new port): each push
// uploads all five layers and each pull downloads them.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { MiB, randomBuffer, tarArchive } from './data.js';
import { startServer, stopServer, type ServerKind } from './servers.js';
import type { Bench, Ctx, Measurement } from './types.js';

const LAYERS = 5;
const TAG = 'bench';

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-3000)));
    p.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${err}`))));
  });
}

/** Build (once) an OCI layout holding a five-layer image of incompressible data; return its path. */
export async function ensureImage(ctx: Ctx): Promise<string> {
  const dir = join(ctx.cacheDir, `oci-${LAYERS}x${ctx.skopeoLayerMB}MB-v1`);
  if (existsSync(join(dir, 'complete'))) return dir;
  ctx.log(`  building ${LAYERS}x${ctx.skopeoLayerMB} MB image with umoci in ${dir} (cached for later runs)`);
  await mkdir(ctx.cacheDir, { recursive: true });
  const tmp = await mkdtemp(join(ctx.cacheDir, 'build-'));
  const layout = join(tmp, 'oci');
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', `${layout}:${TAG}`]);
  for (let i = 0; i < LAYERS; i++) {
    const data = randomBuffer(ctx.skopeoLayerMB * MiB, 0x5eed0000 + i);
    const tarPath = join(tmp, `layer${i}.tar`);
    await writeFile(tarPath, tarArchive([{ name: `layer${i}.bin`, data }]));
    await run('umoci', ['raw', 'add-layer', '--image', `${layout}:${TAG}`, tarPath]);
    await rm(tarPath);
  }
  await run('umoci', ['gc', '--layout', layout]);
  await writeFile(join(layout, 'complete'), '');
  await rm(dir, { recursive: true, force: true });
  await rename(layout, dir);
  await rm(tmp, { recursive: true, force: true });
  return dir;
}

export function skopeoBench(): Bench {
  let image = '';
  return {
    name: 'skopeo',
    rows: [
      { name: 'skopeo-in', label: 'skopeo copy oci: -> docker://', unit: 's', better: 'lower', target: 0.8 },
      { name: 'skopeo-out', label: 'skopeo copy docker:// -> oci:', unit: 's', better: 'lower', target: 0.8 },
    ],
    async beforeRound(ctx) {
      image ||= await ensureImage(ctx);
    },
    async measure(ctx: Ctx, kind: ServerKind, round: number): Promise<Measurement> {
      const srv = await startServer(ctx.specs[kind]);
      const out = await mkdtemp(join(ctx.scratchDir, 'skopeo-out-'));
      try {
        const ref = `docker://${srv.hostPort}/bench/skopeo:r${round}`;
        const t0 = performance.now();
        await run('skopeo', ['copy', '--quiet', '--insecure-policy', '--dest-tls-verify=false', `oci:${image}:${TAG}`, ref]);
        const t1 = performance.now();
        await run('skopeo', ['copy', '--quiet', '--insecure-policy', '--src-tls-verify=false', ref, `oci:${join(out, 'oci')}:${TAG}`]);
        const t2 = performance.now();
        ctx.extraPeak[kind] = Math.max(ctx.extraPeak[kind], srv.rss.peak);
        return { values: { 'skopeo-in': (t1 - t0) / 1000, 'skopeo-out': (t2 - t1) / 1000 }, detail: { peakRssMB: srv.rss.peak / 1e6 } };
      } finally {
        await stopServer(srv);
        await rm(out, { recursive: true, force: true });
      }
    },
  };
}
