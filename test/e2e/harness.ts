// Helpers for Wharf's end-to-end tests: start Wharf or the reference registry (Distribution 2.8,
// Debian's `docker-registry`) on a free loopback port, run real clients (skopeo, podman, buildah,
// ctr, umoci), build test images, and talk raw HTTP to a registry.
//
// Environment:
//   WHARF_E2E_TARGET=wharf|reference   which registry the client tests run against (default wharf)
//   WHARF_E2E_KEEP=1                   keep temp dirs (data, logs) for inspection
//   WHARF_TEST_CACHE=DIR               where the Debian base image is cached (default /tmp/wharf-test-cache)
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (this file is compiled to dist/test/e2e/harness.js). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SERVICES = path.join(ROOT, 'scripts', 'services');
export const TARGET: 'wharf' | 'reference' = process.env.WHARF_E2E_TARGET === 'reference' ? 'reference' : 'wharf';
const KEEP = process.env.WHARF_E2E_KEEP === '1';
export const CACHE_DIR = process.env.WHARF_TEST_CACHE || path.join(os.tmpdir(), 'wharf-test-cache');
const HTTP_SECRET = 'wharf-e2e-http-secret';

// ------------------------------------------------------------------------------------------------
// process-wide cleanup: servers are killed and temp dirs removed when the test process exits

const liveChildren = new Set<ChildProcess>();
const tempDirs: string[] = [];
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

function tail(s: string, lines: number): string {
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

const APT_PACKAGE: Record<string, string> = {
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

// ------------------------------------------------------------------------------------------------
// registry servers

export interface RegistryServer {
  kind: 'wharf' | 'reference';
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT, for image references */
  host: string;
  port: number;
  dataDir: string;
  configPath: string;
  logPath: string;
  pid: number;
  /** SIGTERM, wait (SIGKILL after 10 s) */
  stop(): Promise<void>;
  /** SIGKILL, wait */
  kill(): Promise<void>;
  /** the last lines of the server's log */
  logTail(lines?: number): string;
}

export interface StartOptions {
  /** the storage root (default: a new temp dir) */
  dataDir?: string;
  /** default: a free port */
  port?: number;
  /** storage.maintenance.readonly.enabled */
  readOnly?: boolean;
  /** where config and log go (default: a new temp dir) */
  workDir?: string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Distribution's config format; Wharf reads the same file. */
export function registryConfig(dataDir: string, port: number, readOnly = false): string {
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${dataDir}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    ...(readOnly ? ['    readonly:', '      enabled: true'] : []),
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${HTTP_SECRET}`,
    '',
  ].join('\n');
}

async function startServer(kind: 'wharf' | 'reference', opts: StartOptions): Promise<RegistryServer> {
  if (kind === 'reference') requireTools('docker-registry');
  const workDir = opts.workDir ?? tempDir(kind);
  const dataDir = opts.dataDir ?? path.join(workDir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const configPath = path.join(workDir, `${kind}-${port}.yml`);
  fs.writeFileSync(configPath, registryConfig(dataDir, port, opts.readOnly));
  const logPath = path.join(workDir, `${kind}-${port}.log`);
  const logFd = fs.openSync(logPath, 'a');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // REGISTRY_* would override the config file; AWS_CA_BUNDLE makes distribution's aws-sdk panic
    if (v !== undefined && !k.startsWith('REGISTRY_') && k !== 'AWS_CA_BUNDLE') env[k] = v;
  }
  const [cmd, args] =
    kind === 'wharf'
      ? [process.execPath, [path.join(ROOT, 'bin', 'wharf.js'), 'serve', configPath]]
      : ['docker-registry', ['serve', configPath]];
  const child = spawn(cmd, args as string[], { cwd: ROOT, env, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  child.unref();
  liveChildren.add(child);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitPromise = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      liveChildren.delete(child);
      resolve();
    });
    child.on('error', (e) => {
      exited = { code: -1, signal: null };
      fs.appendFileSync(logPath, `\n[e2e] spawn error: ${e.message}\n`);
      liveChildren.delete(child);
      resolve();
    });
  });
  const logTail = (lines = 30) => {
    try {
      const text = fs.readFileSync(logPath, 'utf8');
      return tail(text.split('\n').map((l) => (l.length > 400 ? l.slice(0, 400) + '...' : l)).join('\n'), lines);
    } catch {
      return '';
    }
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  let last = '';
  for (;;) {
    if (exited) {
      const e = exited as { code: number | null; signal: NodeJS.Signals | null };
      throw new Error(
        `${kind} registry exited during start-up (code ${e.code}, signal ${e.signal}); ` +
          `command: ${[cmd, ...(args as string[])].join(' ')}\nconfig:\n${registryConfig(dataDir, port, opts.readOnly)}` +
          `--- log ${logPath} ---\n${logTail()}`,
      );
    }
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
      last = `GET /v2/ answered ${res.status}`;
    } catch (e) {
      last = `GET /v2/ failed: ${(e as Error).message}`;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${kind} registry did not answer 200 on ${url}/v2/ within 30 s (${last})\n--- log ---\n${logTail()}`);
    }
    await sleep(100);
  }
  const waitExit = (ms: number) =>
    new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      void exitPromise.then(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  return {
    kind,
    url,
    host: `127.0.0.1:${port}`,
    port,
    dataDir,
    configPath,
    logPath,
    pid: child.pid ?? -1,
    logTail,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      if (!(await waitExit(10_000))) {
        child.kill('SIGKILL');
        await exitPromise;
      }
    },
    async kill() {
      if (exited) return;
      child.kill('SIGKILL');
      await exitPromise;
    },
  };
}

/** Starts `node bin/wharf.js serve CONFIG` and waits until GET /v2/ answers 200. */
export function startWharf(opts: StartOptions = {}): Promise<RegistryServer> {
  return startServer('wharf', opts);
}

/** Starts the reference registry (`docker-registry serve CONFIG`) on dataDir, same config format. */
export function startReference(dataDir?: string, opts: StartOptions = {}): Promise<RegistryServer> {
  return startServer('reference', { ...opts, dataDir: dataDir ?? opts.dataDir });
}

/** Starts the registry under test: Wharf, or the reference when WHARF_E2E_TARGET=reference. */
export function startTarget(opts: StartOptions = {}): Promise<RegistryServer> {
  return startServer(TARGET, opts);
}

// ------------------------------------------------------------------------------------------------
// recording reverse proxy: lets a test see which requests a client made (e.g. cross-repo mounts)

export interface RecordedRequest {
  method: string;
  url: string;
  status: number;
}
export interface RecordingProxy {
  url: string;
  host: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startRecordingProxy(targetPort: number): Promise<RecordingProxy> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const up = http.request(
      { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers },
      (ures) => {
        requests.push({ method: req.method ?? '', url: req.url ?? '', status: ures.statusCode ?? 0 });
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      },
    );
    up.on('error', (e) => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', status: 502 });
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${e.message}`);
    });
    req.pipe(up);
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ------------------------------------------------------------------------------------------------
// digests and OCI layouts

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    fs.createReadStream(file)
      .on('error', reject)
      .on('data', (b) => h.update(b))
      .on('end', () => resolve('sha256:' + h.digest('hex')));
  });
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface OciImage {
  layout: string;
  tag: string;
  /** skopeo transport reference, oci:LAYOUT:TAG */
  ref: string;
  /** digest of the manifest (or index) the tag points at */
  digest: string;
  mediaType: string;
  /** config + layer digests (for an index: those of every child) */
  blobs: string[];
  /** for an index: the child manifests */
  children?: Descriptor[];
}

export function blobPath(layout: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  return path.join(layout, 'blobs', alg, hex);
}

export function readBlobJson(layout: string, digest: string): any {
  return JSON.parse(fs.readFileSync(blobPath(layout, digest), 'utf8'));
}

/** Reads what TAG points at in an OCI image layout. */
export function readOciImage(layout: string, tag: string): OciImage {
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
  const desc = (index.manifests as Descriptor[]).find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!desc) throw new Error(`tag ${tag} not found in ${layout}/index.json`);
  const blobsOf = (manifestDigest: string): string[] => {
    const m = readBlobJson(layout, manifestDigest);
    return [m.config.digest, ...m.layers.map((l: Descriptor) => l.digest)];
  };
  const img: OciImage = { layout, tag, ref: `oci:${layout}:${tag}`, digest: desc.digest, mediaType: desc.mediaType, blobs: [] };
  const top = readBlobJson(layout, desc.digest);
  if (Array.isArray(top.manifests)) {
    img.children = top.manifests;
    img.blobs = (top.manifests as Descriptor[]).flatMap((c) => blobsOf(c.digest));
  } else {
    img.blobs = blobsOf(desc.digest);
  }
  return img;
}

/** Checks that every blob in an OCI layout hashes to its file name; returns how many there are. */
export async function verifyOciLayout(layout: string): Promise<number> {
  const dir = path.join(layout, 'blobs', 'sha256');
  const names = fs.readdirSync(dir);
  for (const n of names) {
    const got = await sha256File(path.join(dir, n));
    if (got !== `sha256:${n}`) throw new Error(`corrupt blob in ${layout}: file sha256:${n} hashes to ${got}`);
  }
  return names.length;
}

/** Unpacks TAG of an OCI layout (umoci, rootless) and returns the bundle's rootfs path. */
export async function unpackOci(layout: string, tag: string): Promise<string> {
  requireTools('umoci');
  const bundle = path.join(tempDir('unpack'), 'bundle');
  await run('umoci', ['unpack', '--rootless', '--image', `${layout}:${tag}`, bundle]);
  return path.join(bundle, 'rootfs');
}

// ------------------------------------------------------------------------------------------------
// test images

/** A 2-layer image (small text files + MB MiB of random data) made with umoci, tagged TAG in LAYOUT. */
export async function makeTinyImage(layout: string, tag: string, mb = 2, arch = 'amd64'): Promise<OciImage> {
  requireTools('umoci');
  await run(path.join(SERVICES, 'make-test-image.sh'), ['tiny', layout, tag, String(mb), arch]);
  return readOciImage(layout, tag);
}

/** A 2-platform (linux/amd64 + linux/arm64) OCI image index tagged TAG in its own new LAYOUT. */
export async function makeMultiArchImage(layout: string, tag: string, mb = 1): Promise<OciImage> {
  const amd = await makeTinyImage(layout, `${tag}-amd64`, mb, 'amd64');
  const arm = await makeTinyImage(layout, `${tag}-arm64`, mb, 'arm64');
  const child = (img: OciImage, architecture: string): Descriptor => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: img.digest,
    size: fs.statSync(blobPath(layout, img.digest)).size,
    platform: { architecture, os: 'linux' },
  });
  const indexBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [child(amd, 'amd64'), child(arm, 'arm64')],
    }),
  );
  const digest = sha256(indexBytes);
  fs.writeFileSync(blobPath(layout, digest), indexBytes);
  const indexJson = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
  indexJson.manifests.push({
    mediaType: 'application/vnd.oci.image.index.v1+json',
    digest,
    size: indexBytes.length,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  });
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify(indexJson));
  return readOciImage(layout, tag);
}

/** A realistic Debian bookworm base image (debootstrap --variant=minbase, one ~50 MB gzip layer),
 *  built once per day and cached under CACHE_DIR/debian-bookworm-YYYYMMDD. Needs root and the
 *  Debian mirror (about 40 s to build). */
export async function makeDebianImage(): Promise<OciImage> {
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');
  const key = `debian-bookworm-${day}`;
  const dir = path.join(CACHE_DIR, key);
  const usable = () => {
    try {
      return readOciImage(dir, 'bookworm');
    } catch {
      return null;
    }
  };
  const hit = usable();
  if (hit) return hit;
  requireRoot('building the Debian test image with debootstrap');
  requireTools('debootstrap', 'umoci');
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  // one builder at a time (test files run in parallel processes)
  const lock = path.join(CACHE_DIR, `${key}.lock`);
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      const again = usable();
      if (again) return again;
      let stale = false;
      try {
        stale = Date.now() - fs.statSync(lock).mtimeMs > 10 * 60_000;
      } catch {
        /* just released */
      }
      if (stale) fs.rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for another process to build ${dir} (lock ${lock})`);
      await sleep(500);
    }
  }
  try {
    const again = usable();
    if (again) return again;
    const building = `${dir}.tmp-${process.pid}`;
    fs.rmSync(building, { recursive: true, force: true });
    await run(path.join(SERVICES, 'make-test-image.sh'), ['debian', building, 'bookworm'], { timeoutMs: 10 * 60_000 });
    fs.renameSync(building, dir);
    // drop older days' images
    for (const n of fs.readdirSync(CACHE_DIR)) {
      if (n.startsWith('debian-bookworm-') && n !== key && !n.endsWith('.lock')) {
        fs.rmSync(path.join(CACHE_DIR, n), { recursive: true, force: true });
      }
    }
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
  const built = usable();
  if (!built) throw new Error(`Debian image build left no usable layout in ${dir}`);
  return built;
}

// ------------------------------------------------------------------------------------------------
// clients

/** skopeo with the flags every test needs (no signature policy file, plain HTTP). */
export function skopeo(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  requireTools('skopeo');
  return run('skopeo', ['--insecure-policy', ...args], opts);
}

/** skopeo copy SRC DST over plain HTTP (extra args go before SRC). */
export function skopeoCopy(src: string, dst: string, extra: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  return skopeo(['copy', '--retry-times', '0', '--src-tls-verify=false', '--dest-tls-verify=false', ...extra, src, dst], opts);
}

/** The raw manifest bytes a registry serves for REF (host/repo:tag or @digest) and their digest. */
export async function inspectRaw(ref: string): Promise<{ digest: string; raw: Buffer; manifest: any }> {
  const r = await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${ref}`]);
  const raw = Buffer.from(r.stdout, 'utf8');
  return { digest: sha256(raw), raw, manifest: JSON.parse(r.stdout) };
}

/** `skopeo inspect --format {{.Digest}}`: the digest skopeo reports for REF. */
export async function inspectDigest(ref: string, extra: string[] = []): Promise<string> {
  const r = await skopeo(['inspect', '--tls-verify=false', ...extra, '--format', '{{.Digest}}', `docker://${ref}`]);
  return r.stdout.trim();
}

/** Global flags for podman/buildah with private vfs storage under DIR (works unprivileged-ish sandboxes). */
export function containerStorageArgs(dir: string): string[] {
  return ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--storage-driver', 'vfs'];
}

export function podman(dir: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  requireTools('podman');
  return run('podman', [...containerStorageArgs(dir), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', ...args], {
    ...opts,
    env: { TMPDIR: dir, ...opts.env },
  });
}

export function buildah(dir: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  requireTools('buildah');
  return run('buildah', [...containerStorageArgs(dir), ...args], { ...opts, env: { TMPDIR: dir, ...opts.env } });
}

export interface Containerd {
  address: string;
  ctr(args: string[], opts?: RunOptions): Promise<RunResult>;
  stop(): Promise<void>;
}

/** A private containerd (own state dir and unix socket) via scripts/services/containerd-start.sh. */
export async function startContainerd(): Promise<Containerd> {
  requireRoot('containerd');
  requireTools('containerd', 'ctr');
  // short path: unix socket paths are limited to 108 bytes
  const dir = fs.mkdtempSync('/tmp/wharf-ctd-');
  tempDirs.push(dir);
  const r = await run(path.join(SERVICES, 'containerd-start.sh'), [dir]);
  const address = /CONTAINERD_ADDRESS=(.*)/.exec(r.stdout)?.[1]?.trim();
  if (!address) throw new Error(`containerd-start.sh printed no address\n${describeResult(r)}`);
  return {
    address,
    ctr: (args, opts = {}) => run('ctr', ['-a', address, '-n', 'wharf-e2e', ...args], opts),
    stop: async () => {
      await run(path.join(SERVICES, 'containerd-stop.sh'), [dir, '--purge'], { allowFail: true });
    },
  };
}

// ------------------------------------------------------------------------------------------------
// raw HTTP (Docker Registry HTTP API V2 / OCI distribution)

export interface HttpResult {
  status: number;
  headers: Headers;
  body: Buffer;
  /** METHOD URL, for messages */
  what: string;
}

export async function httpRequest(
  method: string,
  url: string,
  init: { headers?: Record<string, string>; body?: Buffer | string; timeoutMs?: number } = {},
): Promise<HttpResult> {
  const res = await fetch(url, {
    method,
    headers: init.headers,
    body: init.body,
    redirect: 'manual',
    signal: AbortSignal.timeout(init.timeoutMs ?? 60_000),
  });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body, what: `${method} ${url}` };
}

/** "METHOD URL -> STATUS: body" for assertion messages. */
export function show(r: HttpResult): string {
  const text = r.body.length > 600 ? r.body.subarray(0, 600).toString('utf8') + '...' : r.body.toString('utf8');
  const hdrs = ['location', 'range', 'docker-upload-uuid', 'docker-content-digest', 'content-type', 'content-length']
    .filter((h) => r.headers.get(h) !== null)
    .map((h) => `${h}: ${r.headers.get(h)}`)
    .join('; ');
  return `${r.what} -> ${r.status} [${hdrs}] ${text}`;
}

/** The registry error codes in a response body ({"errors":[{"code":...}]}). */
export function errorCodes(r: HttpResult): string[] {
  try {
    return (JSON.parse(r.body.toString('utf8')).errors ?? []).map((e: { code: string }) => e.code);
  } catch {
    return [];
  }
}

export function absolute(base: string, location: string): string {
  return new URL(location, base).toString();
}

/** POST /v2/REPO/blobs/uploads/ -> the upload's absolute Location. */
export async function startUpload(base: string, repo: string): Promise<string> {
  const r = await httpRequest('POST', `${base}/v2/${repo}/blobs/uploads/`, { headers: { 'content-length': '0' } });
  const loc = r.headers.get('location');
  if (r.status !== 202 || !loc) throw new Error(`starting an upload failed: ${show(r)}`);
  return absolute(base, loc);
}

/** PATCH one chunk at START; returns the next Location. */
export async function patchChunk(location: string, chunk: Buffer, start: number): Promise<string> {
  const r = await httpRequest('PATCH', location, {
    headers: {
      'content-type': 'application/octet-stream',
      'content-range': `${start}-${start + chunk.length - 1}`,
      'content-length': String(chunk.length),
    },
    body: chunk,
  });
  const loc = r.headers.get('location');
  if (r.status !== 202 || !loc) throw new Error(`PATCH chunk at ${start} (+${chunk.length}) failed: ${show(r)}`);
  return absolute(location, loc);
}

/** PUT LOCATION?digest=D (optionally with a final chunk). */
export async function finishUpload(location: string, digest: string, body?: Buffer): Promise<HttpResult> {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return httpRequest('PUT', u.toString(), {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(body?.length ?? 0) },
    body: body ?? Buffer.alloc(0),
  });
}

/** Parses an upload's Range header "0-N" into the number of bytes the registry holds (N+1). */
export function rangeToOffset(range: string | null): number | null {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(range ?? '');
  return m ? Number(m[1]) + 1 : null;
}

/** Deterministic pseudo-random bytes (so an upload can be resumed from any offset). */
export function patternBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let off = 0;
  let counter = 0;
  while (off < size) {
    const block = createHash('sha256').update(`${seed}:${counter++}`).digest();
    off += block.copy(out, off);
  }
  return out;
}

export function randomTag(): string {
  return randomBytes(4).toString('hex');
}

/** Runs async jobs with at most LIMIT at a time. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return results;
}

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** GET /v2/REPO/manifests/REF with the usual Accept list; checks nothing. */
export function getManifest(base: string, repo: string, ref: string, method = 'GET'): Promise<HttpResult> {
  return httpRequest(method, `${base}/v2/${repo}/manifests/${ref}`, { headers: { accept: MANIFEST_ACCEPT } });
}
