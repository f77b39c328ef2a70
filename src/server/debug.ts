/**
 * The debug server (`http.debug.addr`), a separate plain-HTTP listener as in Distribution:
 *
 *   /debug/health   GET: `{}` and 200 when every health check passes, else 503 and
 *                   `{"<check>": "<error>", …}` for each failing check
 *   /debug/vars     GET: process facts in JSON (command line, memory, uptime, health), in the
 *                   spirit of Go's expvar
 *   <prometheus.path, default /metrics>   the Prometheus text exposition, when
 *                   `http.debug.prometheus.enabled`
 *
 * Go's /debug/pprof has no Node equivalent here: use `node --inspect` or `--cpu-prof`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { HealthStatus } from '../health/index.js';
import type { WharfMetrics } from '../metrics/index.js';
import { listen } from './app.js';
import { sendJSON, sendNotFoundPage } from './respond.js';

export interface DebugServerOptions {
  addr: string;
  log: Logger;
  health?: HealthStatus;
  /** Present when `http.debug.prometheus.enabled`. */
  metrics?: WharfMetrics;
  prometheusPath: string;
}

export interface DebugServer {
  port: number;
  close(): Promise<void>;
}

export async function startDebugServer(o: DebugServerOptions): Promise<DebugServer> {
  const started = Date.now();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? '';
    if (o.metrics && path === o.prometheusPath) return void sendMetrics(o.metrics, res, o.log);
    if (path === '/debug/health' && method === 'GET') {
      const failures = o.health?.failures() ?? {};
      return sendJSON(res, Object.keys(failures).length === 0 ? 200 : 503, failures);
    }
    if (path === '/debug/vars' && (method === 'GET' || method === 'HEAD')) {
      return sendJSON(res, 200, {
        cmdline: process.argv,
        memstats: process.memoryUsage(),
        uptime_seconds: Math.round((Date.now() - started) / 1000),
        registry: { health: o.health?.failures() ?? {}, healthy: o.health?.healthy ?? true },
      });
    }
    sendNotFoundPage(res);
  };
  let running;
  try {
    running = await listen(handler, o.addr);
  } catch (err) {
    throw new Error(`http.debug.addr: cannot listen on ${o.addr}: ${(err as Error).message}`);
  }
  o.log.info({ addr: o.addr, port: running.port, prometheus: o.metrics ? o.prometheusPath : false }, `debug server listening on ${o.addr}`);
  return { port: running.port, close: running.close };
}

async function sendMetrics(metrics: WharfMetrics, res: ServerResponse, log: Logger): Promise<void> {
  try {
    const body = Buffer.from(await metrics.exposition());
    res.writeHead(200, { 'Content-Type': metrics.contentType, 'Content-Length': body.length });
    res.end(body);
  } catch (err) {
    log.error({ err }, 'metrics exposition failed');
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('metrics unavailable\n');
  }
}
