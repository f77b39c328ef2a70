// Real clients (skopeo, podman, buildah, ctr) and raw HTTP to a registry.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SERVICES, describeResult, requireRoot, requireTools, run, tempDirs, type RunOptions, type RunResult } from './process.js';
import { sha256 } from './images.js';
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

