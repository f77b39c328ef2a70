// Authenticated manifest GETs: the same request rate benchmark as `manifest-16`, through a
// second instance of each server on the same data directory with `auth.htpasswd` (a bcrypt
// entry of cost 5, as `htpasswd -B` writes) and with `auth.token` (an ES256 token whose x5c
// certificate is the rootcertbundle). Distribution checks bcrypt on every request.

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { SignJWT, importPKCS8 } from 'jose';
import { imageManifest, makeSmallBlobs } from './data.js';
import { MANIFEST_ACCEPT, newAgent, pushSmallBlob, putManifest } from './http.js';
import { runLoad } from './loadgen.js';
import { startServer, stopServer, type RunningServer, type ServerKind } from './servers.js';
import type { Bench, Ctx, Measurement } from './types.js';

const REPO = 'bench/auth';
const CONCURRENCY = 16;

interface Fixtures {
  htpasswdYaml: string;
  tokenYaml: string;
  basic: string;
  bearer: string;
}

async function makeFixtures(dir: string): Promise<Fixtures> {
  const htpasswd = join(dir, 'htpasswd');
  writeFileSync(htpasswd, `bench:${bcrypt.hashSync('bench-password', 5).replace(/^\$2[ab]\$/, '$2y$')}\n`);
  const key = join(dir, 'token.key');
  const cert = join(dir, 'token.crt');
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], { stdio: 'ignore' });
  execFileSync('openssl', ['req', '-new', '-x509', '-key', key, '-out', cert, '-days', '2', '-subj', '/CN=bench-token-issuer'], { stdio: 'ignore' });
  const der = readFileSync(cert, 'utf8').replace(/-----[^-]+-----|\s/g, '');
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ access: [{ type: 'repository', name: REPO, actions: ['pull'] }] })
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT', x5c: [der] })
    .setIssuer('bench-issuer')
    .setAudience('bench-registry')
    .setSubject('bench')
    .setIssuedAt(now)
    .setNotBefore(now - 10)
    .setExpirationTime(now + 3600)
    .setJti(String(now))
    .sign(await importPKCS8(readFileSync(key, 'utf8'), 'ES256'));
  return {
    htpasswdYaml: `auth:\n  htpasswd:\n    realm: bench\n    path: ${htpasswd}\n`,
    tokenYaml: `auth:\n  token:\n    realm: http://127.0.0.1:1/token\n    service: bench-registry\n    issuer: bench-issuer\n    rootcertbundle: ${cert}\n`,
    basic: `Basic ${Buffer.from('bench:bench-password').toString('base64')}`,
    bearer: `Bearer ${token}`,
  };
}

export function authBench(): Bench {
  let fixtures: Fixtures | undefined;
  const servers: Partial<Record<ServerKind, { htpasswd: RunningServer; token: RunningServer }>> = {};
  return {
    name: 'auth',
    rows: [
      { name: 'auth-htpasswd', label: `manifest GET c=${CONCURRENCY}, htpasswd`, unit: 'req/s', better: 'higher', target: 1.5 },
      { name: 'auth-token', label: `manifest GET c=${CONCURRENCY}, token`, unit: 'req/s', better: 'higher', target: 1.5 },
    ],
    async prepare(ctx: Ctx, kind: ServerKind) {
      fixtures ??= await makeFixtures(ctx.scratchDir);
      const main = ctx.servers[kind];
      const layers = makeSmallBlobs(2, 16 * 1024, 77);
      const img = imageManifest(layers, 7);
      const agent = newAgent(4);
      for (const b of [...layers, img.config]) await pushSmallBlob(agent, main.base, REPO, b);
      await putManifest(agent, main.base, REPO, 'latest', img.manifest, img.mediaType);
      agent.destroy();
      servers[kind] = {
        htpasswd: await startServer(ctx.specs[kind], { root: main.root, extraYaml: fixtures.htpasswdYaml }),
        token: await startServer(ctx.specs[kind], { root: main.root, extraYaml: fixtures.tokenYaml }),
      };
    },
    async measure(ctx: Ctx, kind: ServerKind): Promise<Measurement> {
      const values: Record<string, number> = {};
      const detail: Record<string, unknown> = {};
      for (const [row, which, header] of [
        ['auth-htpasswd', 'htpasswd', fixtures!.basic],
        ['auth-token', 'token', fixtures!.bearer],
      ] as const) {
        const srv = servers[kind]![which];
        const r = await runLoad({
          host: '127.0.0.1',
          port: srv.port,
          method: 'GET',
          path: `/v2/${REPO}/manifests/latest`,
          headers: { Accept: MANIFEST_ACCEPT, Authorization: header },
          concurrency: CONCURRENCY,
          durationMs: ctx.durationMs,
          warmupMs: ctx.warmupMs,
        });
        if (r.errors > 0) ctx.log(`  ! ${srv.spec.label} ${row}: ${r.errors} errors ${JSON.stringify(r.statuses)}`);
        values[row] = r.errors > 0 ? 0 : r.rps;
        detail[row] = r;
      }
      return { values, detail };
    },
    async cleanup() {
      for (const pair of Object.values(servers)) {
        await stopServer(pair.htpasswd);
        await stopServer(pair.token);
      }
    },
  };
}
