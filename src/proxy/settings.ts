/**
 * What the pull-through cache is told by the configuration, and which upstream (if any) serves a
 * repository. Distribution's form (`proxy.remoteurl`) makes every repository a cached one; Wharf's
 * `proxy.upstreams` serve the repositories under their prefix, and the others stay local.
 */
import type { Config } from '../config/index.js';

/** Distribution 3's default `proxy.cachewritetimeout`. */
export const DEFAULT_CACHE_WRITE_TIMEOUT = 5 * 60_000;

export interface UpstreamSettings {
  /** '' for Distribution's `proxy.remoteurl` (the repositories under no prefix); else e.g. "dockerhub". */
  prefix: string;
  remoteurl: string;
  username: string;
  password: string;
  /** `exec`: a Docker credential helper run as `<command> get` (then username/password are ignored). */
  exec?: { command: string; lifetime?: number };
  /** ms; 0 or less: cached content never expires. */
  ttl: number;
  /** ms a blob may keep filling the cache once no client is reading it. */
  cacheWriteTimeout: number;
  /** The configuration key, for messages: `proxy` or `proxy.upstreams[0]`. */
  key: string;
}

/** Internal, for tests (no configuration key): how long to wait on an upstream, in ms. */
export interface UpstreamTimeouts {
  /** Connecting and waiting for response headers. */
  responseMs: number;
  /** Silence in the middle of a body. */
  idleMs: number;
}

export const DEFAULT_TIMEOUTS: UpstreamTimeouts = { responseMs: 30_000, idleMs: 60_000 };

export interface ProxySettings {
  upstreams: UpstreamSettings[];
  timeouts?: UpstreamTimeouts;
  /** Internal, for tests: how often the expiry state is written (Distribution: every 5 s). */
  saveEveryMs?: number;
}

type ProxyConfig = Config['proxy'];
type UpstreamConfig = Omit<ProxyConfig, 'upstreams'>;

function upstreamFrom(u: UpstreamConfig, prefix: string, key: string): UpstreamSettings {
  return {
    prefix,
    remoteurl: u.remoteurl.replace(/\/+$/, ''),
    username: u.username,
    password: u.password,
    exec: u.exec?.command ? { command: u.exec.command, lifetime: u.exec.lifetime } : undefined,
    ttl: u.ttl,
    cacheWriteTimeout: u.cachewritetimeout !== undefined && u.cachewritetimeout > 0 ? u.cachewritetimeout : DEFAULT_CACHE_WRITE_TIMEOUT,
    key,
  };
}

/** The cache's settings, or undefined when the `proxy` section configures no upstream. */
export function proxySettingsFrom(proxy: ProxyConfig): ProxySettings | undefined {
  const upstreams = proxy.upstreams.map((u, i) => upstreamFrom(u, u.prefix, `proxy.upstreams[${i}]`));
  if (proxy.remoteurl !== '') upstreams.push(upstreamFrom(proxy, '', 'proxy'));
  return upstreams.length > 0 ? { upstreams } : undefined;
}

export interface UpstreamMatch {
  upstream: UpstreamSettings;
  /** The repository's name at the upstream: the prefix stripped, `library/` added for Docker Hub's official images. */
  remoteName: string;
}

const DOCKER_HUB_HOSTS = new Set(['registry-1.docker.io', 'index.docker.io']);

/** The upstream that caches repository `name`: the longest matching prefix, else `proxy.remoteurl`, else none (local). */
export function upstreamFor(upstreams: readonly UpstreamSettings[], name: string): UpstreamMatch | null {
  let best: UpstreamSettings | undefined;
  for (const u of upstreams) {
    const under = u.prefix === '' || name === u.prefix || name.startsWith(`${u.prefix}/`);
    if (under && (!best || u.prefix.length > best.prefix.length)) best = u;
  }
  if (!best) return null;
  let remoteName = best.prefix === '' ? name : name.slice(best.prefix.length + 1);
  if (remoteName !== '' && !remoteName.includes('/') && DOCKER_HUB_HOSTS.has(new URL(best.remoteurl).hostname)) {
    remoteName = `library/${remoteName}`;
  }
  return { upstream: best, remoteName };
}
