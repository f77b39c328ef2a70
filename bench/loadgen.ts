// A lean closed-loop HTTP/1.1 load generator for small requests (HEAD blob, GET manifest).
//
// node:http costs tens of microseconds per request, which on a 2-core machine would make the
// client the bottleneck. This one keeps `concurrency` keep-alive sockets, each with exactly one
// request in flight (no pipelining), writes a pre-encoded request and does the minimum parsing
// needed to find the end of each response (status line, Content-Length or chunked framing).

import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface LoadOpts {
  host: string;
  port: number;
  method: 'GET' | 'HEAD';
  path: string;
  headers?: Record<string, string>;
  concurrency: number;
  durationMs: number;
  warmupMs: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  /** Client process CPU (user+sys) during the window, as % of one core. */
  clientCpuPct: number;
  statuses: Record<string, number>;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

class Conn {
  private sock: net.Socket;
  private buf: Buffer | null = null;
  /** -1: reading head; >=0: body bytes still to skip (content-length mode). */
  private bodyLeft = -1;
  private chunked = false;
  private chunkState: 'size' | 'data' | 'trailer' = 'size';
  private closeAfter = false;
  private sentAt = 0;
  private status = 0;

  constructor(
    private readonly g: LoadGen,
    private readonly reqBytes: Buffer,
    private readonly isHead: boolean,
  ) {
    this.sock = this.connect();
  }

  private connect(): net.Socket {
    const s = net.connect({ host: this.g.o.host, port: this.g.o.port, noDelay: true });
    s.on('connect', () => this.send());
    s.on('data', (d: Buffer) => this.onData(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      if (this.bodyLeft !== -1 || this.sentAt) this.g.error();
      this.reset();
      this.sentAt = 0;
      if (this.g.running) this.sock = this.connect();
    });
    return s;
  }

  private reset(): void {
    this.buf = null;
    this.bodyLeft = -1;
    this.chunked = false;
    this.chunkState = 'size';
  }

  send(): void {
    if (!this.g.running) {
      this.sock.end();
      return;
    }
    this.sentAt = performance.now();
    this.sock.write(this.reqBytes);
  }

  destroy(): void {
    this.sock.destroy();
  }

  private onData(d: Buffer): void {
    this.buf = this.buf && this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      if (!this.buf || this.buf.length === 0) return;
      if (this.bodyLeft === -1 && !this.chunked) {
        const end = this.buf.indexOf(CRLFCRLF);
        if (end < 0) return;
        const head = this.buf.toString('latin1', 0, end + 2);
        this.buf = this.buf.subarray(end + 4);
        this.status = Number(head.slice(9, 12));
        const lower = head.toLowerCase();
        this.closeAfter = lower.includes('\r\nconnection: close\r\n');
        if (this.isHead || this.status === 204 || this.status === 304) {
          this.bodyLeft = 0;
        } else if (lower.includes('\r\ntransfer-encoding: chunked')) {
          this.chunked = true;
          this.chunkState = 'size';
          continue;
        } else {
          const m = /\r\ncontent-length:\s*(\d+)/.exec(lower);
          this.bodyLeft = m ? Number(m[1]) : 0;
        }
      }
      if (this.chunked) {
        if (!this.stepChunked()) return;
        this.complete();
        continue;
      }
      const take = Math.min(this.bodyLeft, this.buf.length);
      this.buf = this.buf.subarray(take);
      this.bodyLeft -= take;
      if (this.bodyLeft > 0) return;
      this.complete();
    }
  }

  /** Advance chunked decoding over this.buf; true when the terminating chunk has been consumed. */
  private stepChunked(): boolean {
    for (;;) {
      const b = this.buf!;
      if (this.chunkState === 'size') {
        const nl = b.indexOf('\r\n');
        if (nl < 0) return false;
        const size = parseInt(b.toString('latin1', 0, nl), 16);
        this.buf = b.subarray(nl + 2);
        if (size === 0) this.chunkState = 'trailer';
        else {
          this.bodyLeft = size + 2; // data plus its CRLF
          this.chunkState = 'data';
        }
      } else if (this.chunkState === 'data') {
        const take = Math.min(this.bodyLeft, b.length);
        this.buf = b.subarray(take);
        this.bodyLeft -= take;
        if (this.bodyLeft > 0) return false;
        this.chunkState = 'size';
      } else {
        const nl = b.indexOf('\r\n');
        if (nl < 0) return false;
        this.buf = b.subarray(nl + 2);
        if (nl === 0) {
          this.chunked = false;
          return true;
        }
      }
    }
  }

  private complete(): void {
    const t = performance.now();
    this.g.done(this.status, t - this.sentAt);
    this.reset();
    this.sentAt = 0;
    if (this.closeAfter) {
      this.sock.destroy();
      return;
    }
    this.send();
  }
}

class LoadGen {
  running = true;
  measuring = false;
  count = 0;
  errors = 0;
  statuses: Record<string, number> = {};
  lat: Float64Array;
  latN = 0;
  constructor(readonly o: LoadOpts) {
    this.lat = new Float64Array(4_000_000);
  }
  done(status: number, ms: number): void {
    if (!this.measuring) return;
    this.count++;
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    if (status < 200 || status >= 300) this.errors++;
    if (this.latN < this.lat.length) this.lat[this.latN++] = ms;
  }
  error(): void {
    if (this.measuring) this.errors++;
  }
}

function encodeRequest(o: LoadOpts): Buffer {
  const lines = [`${o.method} ${o.path} HTTP/1.1`, `Host: ${o.host}:${o.port}`, 'User-Agent: wharf-bench'];
  for (const [k, v] of Object.entries(o.headers ?? {})) lines.push(`${k}: ${v}`);
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
}

export async function runLoad(o: LoadOpts): Promise<LoadResult> {
  const g = new LoadGen(o);
  const req = encodeRequest(o);
  const conns = Array.from({ length: o.concurrency }, () => new Conn(g, req, o.method === 'HEAD'));
  await new Promise((r) => setTimeout(r, o.warmupMs));
  g.measuring = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, o.durationMs));
  g.measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  g.running = false;
  for (const c of conns) c.destroy();
  const lat = g.lat.subarray(0, g.latN).sort();
  const q = (p: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! : NaN);
  return {
    requests: g.count,
    errors: g.errors,
    seconds,
    rps: g.count / seconds,
    p50ms: q(0.5),
    p99ms: q(0.99),
    clientCpuPct: ((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 100,
    statuses: g.statuses,
  };
}
