/**
 * Real redis-server instances for the redis cache's tests, started by
 * scripts/services/redis-start.sh: the shared one (/tmp/wharf-redis, port 6379; each test file
 * uses its own database number), or a private one on a free port with its own state dir for
 * tests that stop or freeze it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { startService } from '../storage/service-script.js';

const run = promisify(execFile);
const SCRIPTS = resolve(import.meta.dirname, '../../../scripts/services');

export interface RedisServer {
  /** 127.0.0.1:PORT */
  addr: string;
  port: number;
  /** A client on `db` (closed by the caller). */
  client(db: number): Redis;
}

export interface PrivateRedis extends RedisServer {
  dir: string;
  /** What redis-start.sh printed (REDIS_ADDRS for a cluster, REDIS_SENTINEL_ADDR for sentinel). */
  vars: Record<string, string>;
  pid(): number;
  /** Stop the server (redis-stop.sh); its data is gone (no persistence). */
  stop(): Promise<void>;
  /** Start it again on the same port. */
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: a server that is connected but does not answer. */
  freeze(): void;
  thaw(): void;
  /** Stop and remove the state dir. */
  destroy(): Promise<void>;
}

function server(addr: string): RedisServer {
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  return { addr, port, client: (db) => new Redis({ host: '127.0.0.1', port, db, lazyConnect: false, maxRetriesPerRequest: 1 }) };
}

let shared: Promise<RedisServer> | null = null;

/** The shared server (started once, left running for later test files and runs). */
export function sharedRedis(): Promise<RedisServer> {
  shared ??= startService('redis-start.sh', { timeoutMs: 30_000 }).then(({ vars }) => server(vars.REDIS_ADDR!));
  return shared;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Three free ports in a row (a cluster's, or a server's and its sentinel's). */
async function freePorts(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port > 65000) continue;
    const taken = await Promise.all([port + 1, port + 2].map((p) => new Promise<boolean>((res) => {
      const s = net.createServer();
      s.once('error', () => res(true));
      s.listen(p, '127.0.0.1', () => s.close(() => res(false)));
    })));
    if (!taken.includes(true)) return port;
  }
}

/** A server of this test's own (or a cluster, or a server and its sentinel), on free ports. */
export async function privateRedis(label: string, mode: 'standalone' | 'cluster' | 'sentinel' = 'standalone'): Promise<PrivateRedis> {
  const dir = `/tmp/wharf-redis-${label}-${randomBytes(4).toString('hex')}`;
  const port = await freePorts();
  const env = { ...process.env, WHARF_REDIS_DIR: dir, REDIS_PORT: String(port), REDIS_MODE: mode };
  let pid = 0;
  let vars: Record<string, string> = {};
  const start = async () => {
    vars = (await startService('redis-start.sh', { timeoutMs: 60_000, env })).vars;
    pid = Number(vars.REDIS_PID);
  };
  await start();
  const stop = async () => {
    await run('bash', [resolve(SCRIPTS, 'redis-stop.sh'), dir]);
  };
  return {
    ...server(`127.0.0.1:${port}`),
    dir,
    get vars() {
      return vars;
    },
    pid: () => pid,
    stop,
    start,
    freeze: () => process.kill(pid, 'SIGSTOP'),
    thaw: () => process.kill(pid, 'SIGCONT'),
    destroy: async () => {
      await run('bash', [resolve(SCRIPTS, 'redis-stop.sh'), dir, '--purge']);
    },
  };
}

/** Every key of `db` with its value (hashes as objects, sets sorted), for exact comparisons. */
export async function dump(client: Redis): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of (await client.keys('*')).sort()) {
    const type = await client.type(key);
    if (type === 'hash') out[key] = await client.hgetall(key);
    else if (type === 'set') out[key] = (await client.smembers(key)).sort();
    else out[key] = type;
  }
  return out;
}

/** Poll `check` until it returns true (or fail with `what` after `ms`). */
export async function eventually(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
