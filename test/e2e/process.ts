// Process and tool helpers for Wharf's end-to-end tests (harness.ts re-exports every helper file): start Wharf or the reference registry (Distribution 2.8,
// Debian's `docker-registry`) on a free loopback port, run real clients (skopeo, podman, buildah,
// ctr, umoci), build test images, and talk raw HTTP to a registry.
//
// Environment:
//   WHARF_E2E_TARGET=wharf|reference   which registry the client tests run against (default wharf)
//   WHARF_E2E_KEEP=1                   keep temp dirs (data, logs) for inspection
//   WHARF_TEST_CACHE=DIR               where the Debian base image is cached (default /tmp/wharf-test-cache)
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (this file is compiled to dist/test/e2e/harness.js). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SERVICES = path.join(ROOT, 'scripts', 'services');
export const TARGET: 'wharf' | 'reference' = process.env.WHARF_E2E_TARGET === 'reference' ? 'reference' : 'wharf';
export const KEEP = process.env.WHARF_E2E_KEEP === '1';
export const CACHE_DIR = process.env.WHARF_TEST_CACHE || path.join(os.tmpdir(), 'wharf-test-cache');
export const HTTP_SECRET = 'wharf-e2e-http-secret';

// ------------------------------------------------------------------------------------------------
// process-wide cleanup: servers are killed and temp dirs removed when the test process exits

export const liveChildren = new Set<ChildProcess>();
export const tempDirs: string[] = [];
process.on('exit', () => {
  for (const c of liveChildren) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  if (KEEP) {
    if (tempDirs.length) console.error(`[e2e] kept temp dirs: ${tempDirs.join(' ')}`);
    return;
  }
  for (const d of tempDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort: e.g. a leftover mount */
    }
  }
});

/** A fresh directory under the system temp dir, removed at process exit (unless WHARF_E2E_KEEP=1). */
export function tempDir(label: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `wharf-e2e-${label}-`));
  tempDirs.push(d);
  return d;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ------------------------------------------------------------------------------------------------
// running commands

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
  /** do not throw on a non-zero exit; the caller inspects `code` */
  allowFail?: boolean;
  input?: string | Buffer;
}
export interface RunResult {
  cmd: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function tail(s: string, lines: number): string {
  const all = s.trimEnd().split('\n');
  return (all.length > lines ? [`... (${all.length - lines} earlier lines)`] : []).concat(all.slice(-lines)).join('\n');
}

function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

export function describeResult(r: RunResult): string {
  const how = r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
  return (
    `command: ${r.cmd}\n${how} after ${(r.ms / 1000).toFixed(1)}s` +
    (r.stderr.trim() ? `\n--- stderr ---\n${tail(r.stderr, 40)}` : '') +
    (r.stdout.trim() ? `\n--- stdout ---\n${tail(r.stdout, 20)}` : '')
  );
}

export class CommandError extends Error {
  constructor(readonly result: RunResult) {
    super(`command failed\n${describeResult(result)}`);
  }
}

/** Runs a command to completion. Throws a CommandError (with command line, exit code, stderr and
 *  stdout tails) if it fails, unless allowFail. Default timeout: 180 s (then SIGKILL). */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  const line = [cmd, ...args].map(quote).join(' ');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...opts.env })) if (v !== undefined) env[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => {
      err.push(Buffer.from(`\n[e2e] timed out after ${opts.timeoutMs ?? 180_000} ms; killing\n`));
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 180_000);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        e.code === 'ENOENT'
          ? new Error(`'${cmd}' is not installed (${missingHint([cmd])})`)
          : new Error(`could not run ${line}: ${e.message}`),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const r: RunResult = {
        cmd: line,
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: Date.now() - started,
      };
      if (code !== 0 && !opts.allowFail) reject(new CommandError(r));
      else resolve(r);
    });
    child.stdin.on('error', () => {
      /* the child may exit without reading its input */
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a command that is expected to FAIL; throws if it succeeds. */
export async function runExpectFailure(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, { ...opts, allowFail: true });
  if (r.code === 0) throw new Error(`expected this command to fail, but it succeeded\n${describeResult(r)}`);
  return r;
}

// ------------------------------------------------------------------------------------------------
// required tools: a missing client is a test FAILURE that says what to install

export const APT_PACKAGE: Record<string, string> = {
  skopeo: 'skopeo',
  podman: 'podman',
  buildah: 'buildah',
  ctr: 'containerd',
  containerd: 'containerd',
  'docker-registry': 'docker-registry',
  umoci: 'umoci',
  debootstrap: 'debootstrap',
  curl: 'curl',
  newuidmap: 'uidmap',
};

function missingHint(tools: string[]): string {
  const pkgs = [...new Set(tools.map((t) => APT_PACKAGE[t] ?? t))];
  return `install with: apt-get install -y ${pkgs.join(' ')}  (.ci/run installs everything the e2e tests need)`;
}

function onPath(tool: string): boolean {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/local/sbin']);
  return dirs.some((d) => {
    try {
      fs.accessSync(path.join(d, tool), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Throws (so the calling test fails) if any tool is missing, naming the Debian packages to install. */
export function requireTools(...tools: string[]): void {
  const missing = tools.filter((t) => !onPath(t));
  if (missing.length) throw new Error(`required tool(s) missing: ${missing.join(', ')}; ${missingHint(missing)}`);
}

export function requireRoot(why: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error(`${why} needs root; run the e2e tests as root (CI runs .ci/run as root)`);
  }
}
