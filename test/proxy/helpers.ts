// Helpers for the pull-through cache tests: Wharf in-process as the cache (filesystem storage in a
// temp dir) in front of real upstreams on loopback (another Wharf, or a small HTTP server that
// misbehaves on purpose), and a counting reverse proxy between them.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { startRegistry } from '../../src/cli/start.js';
import { DEFAULT_CACHE_WRITE_TIMEOUT, type ProxySettings, type UpstreamSettings, type UpstreamTimeouts } from '../../src/proxy/settings.js';
import { makeSettings, type TestServer } from '../server/helpers.js';

export { startRecordingProxy, type RecordingProxy } from '../e2e/servers.js';

/** One upstream as the configuration would give it; `prefix` '' is Distribution's `proxy.remoteurl`. */
export function upstream(remoteurl: string, opts: Partial<UpstreamSettings> = {}): UpstreamSettings {
  const prefix = opts.prefix ?? '';
  return {
    prefix,
    remoteurl,
    username: '',
    password: '',
    ttl: 168 * 3_600_000,
    cacheWriteTimeout: DEFAULT_CACHE_WRITE_TIMEOUT,
    key: prefix ? `proxy.upstreams[0]` : 'proxy',
    ...opts,
  };
}

export interface CacheServer extends TestServer {
  dir: string;
}

/** Wharf as a pull-through cache over `dir` (a new temp dir unless given: a restart). */
export async function startCache(
  upstreams: UpstreamSettings[],
  opts: { dir?: string; timeouts?: UpstreamTimeouts; saveEveryMs?: number; log?: Logger; deleteEnabled?: boolean } = {},
): Promise<CacheServer> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-proxy-'));
  const proxy: ProxySettings = { upstreams, timeouts: opts.timeouts, saveEveryMs: opts.saveEveryMs };
  const settings = { ...makeSettings({ dir, deleteEnabled: opts.deleteEnabled }), proxy };
  const started = await startRegistry(settings, opts.log);
  return { url: started.url, port: started.port, dir, started, settings, close: () => started.close() };
}

/** Wharf in-process as an upstream (inmemory storage), optionally with an `auth` section. */
export async function startUpstream(opts: { auth?: Parameters<typeof startRegistry>[0]['auth']; dir?: string } = {}): Promise<TestServer> {
  const settings = { ...makeSettings(opts.dir ? { dir: opts.dir } : { inmemory: true }), auth: opts.auth };
  const started = await startRegistry(settings);
  return { url: started.url, port: started.port, started, settings, close: () => started.close() };
}

export interface FakeUpstream {
  url: string;
  port: number;
  requests: { method: string; url: string }[];
  close(): Promise<void>;
}

/** A plain HTTP server answering as `handle` says: an upstream that lies, stalls or breaks. */
export async function startFakeUpstream(handle: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<FakeUpstream> {
  const requests: FakeUpstream['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '' });
    handle(req, res);
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Removes the temp dirs of caches when a test file is done. */
export function removeDir(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

/** Files under `dir` (relative), for "nothing partial is visible" checks. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }) : []) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

/** Poll `check` until it holds (or `ms` pass). */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
