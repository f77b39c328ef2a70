// Starting, probing, sampling and stopping the two registries under test.
//
// Each server gets its own fresh temporary root directory, its own free loopback port,
// access logs off and log level warn. Both get the same Distribution-style YAML
// config (the one `registry:2` ships, minus auth/health noise), so the comparison is
// configuration-for-configuration.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import http from 'node:http';

export type ServerKind = 'distribution' | 'wharf';

export interface ServerSpec {
  kind: ServerKind;
  label: string;
  /** argv[0] and leading args; the config path is appended. */
  command: string[];
  env: NodeJS.ProcessEnv;
}

/** Resolve how to launch each server. BENCH_WHARF_CMD / BENCH_DIST_CMD override (space-separated). */
export function serverSpecs(repoRoot: string): Record<ServerKind, ServerSpec> {
  const distEnv = { ...process.env };
  delete distEnv.AWS_CA_BUNDLE;
  const split = (s: string): string[] => s.trim().split(/\s+/).filter(Boolean);
  const distCmd = process.env.BENCH_DIST_CMD ? split(process.env.BENCH_DIST_CMD) : ['docker-registry', 'serve'];
  const wharfCmd = process.env.BENCH_WHARF_CMD
    ? split(process.env.BENCH_WHARF_CMD)
    : [process.execPath, join(repoRoot, 'bin', 'wharf.js'), 'serve'];
  const wharfEnv = { ...process.env };
  if (process.env.BENCH_WHARF_CMD) delete wharfEnv.AWS_CA_BUNDLE;
  return {
    distribution: { kind: 'distribution', label: 'Distribution', command: distCmd, env: distEnv },
    wharf: { kind: 'wharf', label: 'Wharf', command: wharfCmd, env: wharfEnv },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

/** `storage`: lines replacing the filesystem driver block (indented two spaces, e.g. an `s3:` block). */
function configYaml(root: string, port: number, storage?: string[]): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  cache:',
    '    blobdescriptor: inmemory',
    ...(storage ?? ['  filesystem:', `    rootdirectory: ${root}`]),
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n');
}

/** Resident set size, in bytes, of a process plus all its descendants (0 if gone). */
export function treeRss(pid: number): number {
  let total = 0;
  const stack = [pid];
  const seen = new Set<number>();
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    try {
      const status = readFileSync(`/proc/${p}/status`, 'latin1');
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
      if (m) total += Number(m[1]) * 1024;
    } catch {
      continue;
    }
    try {
      const children = readFileSync(`/proc/${p}/task/${p}/children`, 'latin1').trim();
      if (children) for (const c of children.split(/\s+/)) stack.push(Number(c));
    } catch {
      /* no children file: ignore */
    }
  }
  return total;
}

/** Samples a process tree's RSS every `intervalMs`; keeps the overall peak and a resettable window peak. */
export class RssSampler {
  peak = 0;
  windowPeak = 0;
  last = 0;
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly pid: number,
    intervalMs = 50,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }
  sample(): number {
    const v = treeRss(this.pid);
    if (v > 0) {
      this.last = v;
      if (v > this.peak) this.peak = v;
      if (v > this.windowPeak) this.windowPeak = v;
    }
    return v;
  }
  /** Start a fresh window; returns the current RSS as the baseline. */
  startWindow(): number {
    const v = this.sample();
    this.windowPeak = v;
    return v;
  }
  /** End a window; returns the peak RSS seen since startWindow (including a final sample). */
  endWindow(): number {
    this.sample();
    return this.windowPeak;
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

export class RunningServer {
  readonly base: string;
  readonly rss: RssSampler;
  private exited = false;
  private stderrTail = '';
  constructor(
    readonly spec: ServerSpec,
    readonly port: number,
    readonly root: string,
    private readonly workDir: string,
    private readonly child: ChildProcess,
  ) {
    this.base = `http://127.0.0.1:${port}`;
    this.rss = new RssSampler(child.pid!);
    child.on('exit', () => {
      this.exited = true;
    });
    const keep = (d: Buffer): void => {
      this.stderrTail = (this.stderrTail + d.toString('utf8')).slice(-4000);
    };
    child.stderr?.on('data', keep);
    child.stdout?.on('data', keep);
  }
  get hostPort(): string {
    return `127.0.0.1:${this.port}`;
  }
  get pid(): number {
    return this.child.pid!;
  }
  get alive(): boolean {
    return !this.exited;
  }
  get logTail(): string {
    return this.stderrTail;
  }

  async waitReady(timeoutMs = 20000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`${this.spec.label} exited during startup:\n${this.stderrTail}`);
      const status = await new Promise<number>((res) => {
        const req = http.get(`${this.base}/v2/`, { agent: false }, (r) => {
          r.resume();
          r.on('end', () => res(r.statusCode ?? 0));
        });
        req.on('error', () => res(0));
        req.setTimeout(1000, () => req.destroy());
      });
      if (status === 200 || status === 401) return; // 401: up, with authentication on
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.spec.label} did not answer GET /v2/ with 200 within ${timeoutMs} ms:\n${this.stderrTail}`);
  }

  async stop(): Promise<void> {
    this.rss.stop();
    if (!this.exited) {
      const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    }
    await rm(this.workDir, { recursive: true, force: true });
  }
}

const running = new Set<RunningServer>();

/**
 * `root`: serve an existing data directory; `storage`: another driver's block instead of the filesystem;
 * `extraYaml`: more top-level sections (e.g. `auth:`).
 */
export async function startServer(spec: ServerSpec, opts: { root?: string; storage?: string[]; extraYaml?: string } = {}): Promise<RunningServer> {
  const workDir = await mkdtemp(join(tmpdir(), `wharf-bench-${spec.kind}-`));
  const root = opts.root ?? join(workDir, 'data');
  const port = await freePort();
  const cfg = join(workDir, 'config.yml');
  await writeFile(cfg, configYaml(root, port, opts.storage) + (opts.extraYaml ?? ''));
  const [cmd, ...args] = spec.command;
  if (!cmd) throw new Error(`empty command for ${spec.label}`);
  const child = spawn(cmd, [...args, cfg], {
    env: spec.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: workDir,
  });
  const spawnError = new Promise<never>((_, rej) => child.once('error', (e) => rej(new Error(`${spec.label}: ${e.message}`))));
  spawnError.catch(() => undefined);
  const srv = new RunningServer(spec, port, root, workDir, child);
  running.add(srv);
  try {
    await Promise.race([srv.waitReady(), spawnError]);
  } catch (e) {
    running.delete(srv);
    await srv.stop();
    throw e;
  }
  return srv;
}

export async function stopServer(srv: RunningServer): Promise<void> {
  running.delete(srv);
  await srv.stop();
}

/** Stop everything still running (used on exit and on signals). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((s) => stopServer(s)));
}

export function repoRootFrom(metaUrl: string): string {
  // dist/bench/run.js -> repo root is two levels up from dist/bench.
  let dir = resolve(new URL('.', metaUrl).pathname);
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = resolve(dir, '..');
  }
  return process.cwd();
}
