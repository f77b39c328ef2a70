/**
 * The `redis` section: Distribution 2.8's keys (`addr`, `password`, `db`, timeouts, `pool`) and
 * Distribution 3's go-redis UniversalOptions (`addrs`, `username`, `mastername`, …, `tls`). Checked
 * with the rest of the configuration (`checkRedisConfig`), then turned into one connection
 * description (`redisConnection`) that the registry opens with ioredis.
 *
 * As in go-redis: one address is a single server, several are a Redis Cluster, and `mastername`
 * makes the addresses Sentinels that name the master.
 */
import type { z } from 'zod';

export interface RedisNode {
  host: string;
  port: number;
}

export interface RedisConnection {
  mode: 'standalone' | 'cluster' | 'sentinel';
  /** The server, the cluster's seed nodes, or the sentinels. */
  nodes: RedisNode[];
  /** The configuration key the nodes came from, for messages. */
  addrKey: 'redis.addr' | 'redis.addrs';
  masterName?: string;
  username?: string;
  password?: string;
  db: number;
  sentinelUsername?: string;
  sentinelPassword?: string;
  clientName?: string;
  /** `dialtimeout` (go-redis' default 5 s). */
  connectTimeoutMs: number;
  /** The longer of `readtimeout` and `writetimeout` (go-redis' default 3 s): one bound for a command's round trip. */
  commandTimeoutMs: number;
  /** Reconnection back-off bounds (`minretrybackoff`, `maxretrybackoff`). */
  minBackoffMs: number;
  maxBackoffMs: number;
  /** Cluster: `readonly` reads from replicas, `routerandomly`/`routebylatency` from any node. */
  clusterReads: 'master' | 'slave' | 'all';
  maxRedirects?: number;
  /** `protocol`: 2 or 3 (RESP version). */
  protocol?: 2 | 3;
  tls?: { certificate?: string; key?: string; ca: string[] };
}

/** The parsed `redis` section (the fields read here; schema.ts has them all). */
export interface RedisSection {
  addr: string;
  addrs: readonly string[];
  username?: string;
  password?: string;
  db: number;
  dialtimeout?: number;
  readtimeout?: number;
  writetimeout?: number;
  tls: { enabled: boolean; certificate?: string; key?: string; rootcas: readonly string[]; clientcas: readonly string[] };
  clientname?: string;
  protocol?: number;
  sentinelusername?: string;
  sentinelpassword?: string;
  minretrybackoff?: number;
  maxretrybackoff?: number;
  maxredirects?: number;
  readonly?: boolean;
  routebylatency?: boolean;
  routerandomly?: boolean;
  mastername?: string;
}

type Redis = RedisSection;
type Ctx = z.core.$RefinementCtx<unknown>;

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/]+)):(\d{1,5})$/;
const HOST_PORT_MSG = 'expected host:port such as "localhost:6379" (IPv6: "[::1]:6379")';

/** "host:port" or "[v6]:port" → node; null when malformed. */
export function parseHostPort(addr: string): RedisNode | null {
  const m = HOST_PORT.exec(addr.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2]!, port };
}

/** Cross-key checks of the `redis` section and of `storage.cache.blobdescriptor: redis`. */
export function checkRedisConfig(c: { redis: Redis; storage: { cache: { blobdescriptor?: string } } }, ctx: Ctx): void {
  const r = c.redis;
  const issue = (path: (string | number)[], message: string, input?: unknown) => ctx.addIssue({ code: 'custom', path, message, input });
  if (r.addr !== '' && !parseHostPort(r.addr)) issue(['redis', 'addr'], HOST_PORT_MSG, r.addr);
  r.addrs.forEach((a: string, i: number) => {
    if (!parseHostPort(a)) issue(['redis', 'addrs', i], HOST_PORT_MSG, a);
  });
  if (r.addr !== '' && r.addrs.length > 0 && !(r.addrs.length === 1 && r.addrs[0] === r.addr)) {
    issue(['redis', 'addrs'], 'set either redis.addr (Distribution 2.8) or redis.addrs (Distribution 3), not both');
  }
  const configured = r.addr !== '' || r.addrs.length > 0;
  if (c.storage.cache.blobdescriptor === 'redis' && !configured) {
    issue(['storage', 'cache', 'blobdescriptor'], 'the redis cache needs the redis section: set redis.addr (or redis.addrs)');
  }
  if (!configured) return;
  const cluster = r.addrs.length > 1 && !r.mastername;
  if (cluster && r.db !== 0) issue(['redis', 'db'], `Redis Cluster has only database 0 (redis.addrs lists ${r.addrs.length} nodes)`, r.db);
  if (r.protocol !== undefined && r.protocol !== 0 && r.protocol !== 2 && r.protocol !== 3) issue(['redis', 'protocol'], 'expected 2 or 3', r.protocol);
  const { certificate, key } = r.tls;
  if (!!certificate !== !!key) {
    issue(['redis', 'tls', certificate ? 'key' : 'certificate'], 'a client certificate needs both redis.tls.certificate and redis.tls.key');
  }
  if (r.mastername !== undefined && r.mastername.trim() === '') issue(['redis', 'mastername'], 'expected the name of the master the sentinels watch', r.mastername);
  for (const [k, v] of [['readtimeout', r.readtimeout], ['writetimeout', r.writetimeout], ['dialtimeout', r.dialtimeout]] as const) {
    if (v !== undefined && v < 0) issue(['redis', k], 'expected a duration ≥ 0', v);
  }
}

/** The connection the configuration describes; null without `redis.addr`/`redis.addrs`. */
export function redisConnection(r: Redis): RedisConnection | null {
  const addrs = r.addrs.length > 0 ? r.addrs : r.addr !== '' ? [r.addr] : [];
  if (addrs.length === 0) return null;
  const nodes = addrs.map((a) => parseHostPort(a)!);
  const mode = r.mastername ? 'sentinel' : nodes.length > 1 ? 'cluster' : 'standalone';
  const timeouts = [r.readtimeout, r.writetimeout].filter((t): t is number => t !== undefined && t > 0);
  const tlsOn = r.tls.enabled || !!r.tls.certificate || r.tls.rootcas.length > 0 || r.tls.clientcas.length > 0;
  return {
    mode,
    nodes,
    addrKey: r.addrs.length > 0 ? 'redis.addrs' : 'redis.addr',
    masterName: r.mastername || undefined,
    username: r.username || undefined,
    password: r.password || undefined,
    db: r.db,
    sentinelUsername: r.sentinelusername || undefined,
    sentinelPassword: r.sentinelpassword || undefined,
    clientName: r.clientname || undefined,
    connectTimeoutMs: r.dialtimeout && r.dialtimeout > 0 ? r.dialtimeout : 5000,
    commandTimeoutMs: timeouts.length > 0 ? Math.max(...timeouts) : 3000,
    minBackoffMs: r.minretrybackoff && r.minretrybackoff > 0 ? r.minretrybackoff : 8,
    maxBackoffMs: r.maxretrybackoff && r.maxretrybackoff > 0 ? r.maxretrybackoff : 512,
    clusterReads: r.readonly ? (r.routerandomly || r.routebylatency ? 'all' : 'slave') : 'master',
    maxRedirects: r.maxredirects !== undefined && r.maxredirects > 0 ? r.maxredirects : undefined,
    protocol: r.protocol === 2 || r.protocol === 3 ? r.protocol : undefined,
    tls: tlsOn ? { certificate: r.tls.certificate || undefined, key: r.tls.key || undefined, ca: [...r.tls.rootcas, ...r.tls.clientcas] } : undefined,
  };
}

/** "127.0.0.1:6379", "cluster 10.0.0.1:6379, 10.0.0.2:6379", "sentinel master mymaster via …", for logs. */
export function describeRedis(c: RedisConnection): string {
  const list = c.nodes.map((n) => (n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(', ');
  if (c.mode === 'cluster') return `cluster ${list}`;
  if (c.mode === 'sentinel') return `master "${c.masterName}" via sentinels ${list}`;
  return c.db === 0 ? list : `${list} db ${c.db}`;
}
