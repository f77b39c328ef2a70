/** Access log lines in the Combined Log Format, as Distribution writes them. */
import type { IncomingMessage, ServerResponse } from 'node:http';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function clfDate(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

export function accessLogLine(req: IncomingMessage, res: ServerResponse, started: bigint): string {
  const length = res.getHeader('content-length') ?? '-';
  const referer = req.headers.referer ?? '';
  const agent = req.headers['user-agent'] ?? '';
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return `${req.socket?.remoteAddress ?? '-'} - - [${clfDate(new Date())}] "${req.method} ${req.url} HTTP/${req.httpVersion}" ${res.statusCode} ${length} "${referer}" "${agent}" ${ms.toFixed(1)}ms`;
}
