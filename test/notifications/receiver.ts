// A real webhook receiver on 127.0.0.1 for the notification tests: it records every request
// (method, path, headers, parsed envelope, arrival time) and answers as the test says: a status
// code per request, or never (a hung endpoint). It can go down and come back on the same port.
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Received {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The raw header lines, so repeated headers can be seen one by one. */
  rawHeaders: string[];
  body: string;
  envelope: { events: any[] } | null;
  at: number;
  /** The status answered (undefined: the receiver hung). */
  status?: number;
}

/** What to answer to the n-th request (0-based): a status, or 'hang' (never answer). */
export type Behaviour = (n: number, req: Received) => number | 'hang';

export class Receiver {
  readonly requests: Received[] = [];
  behaviour: Behaviour = () => 200;
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** Every event received with a 2xx answer, in arrival order. */
  get accepted(): any[] {
    return this.requests.filter((r) => r.status !== undefined && r.status < 300).flatMap((r) => r.envelope?.events ?? []);
  }

  /** Every event posted, whatever the answer. */
  get attempted(): any[] {
    return this.requests.flatMap((r) => r.envelope?.events ?? []);
  }

  async start(port = this.port): Promise<void> {
    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const body = Buffer.concat(parts).toString('utf8');
        let envelope: Received['envelope'] = null;
        try {
          envelope = JSON.parse(body);
        } catch {
          /* recorded as is */
        }
        const r: Received = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body, envelope, at: Date.now() };
        const answer = this.behaviour(this.requests.length, r);
        this.requests.push(r);
        if (answer === 'hang') return;
        r.status = answer;
        res.writeHead(answer, { 'Content-Length': 2 });
        res.end('ok');
      });
    });
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Go down: close the listener and cut every connection (nothing answers on the port any more). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Wait until `predicate` holds (checked every 20 ms); fails with `what` after `ms`. */
  async waitFor(predicate: () => boolean, what: string, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; received ${this.requests.length} requests: ${summary(this)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function summary(r: Receiver): string {
  return r.requests
    .slice(-10)
    .map((q) => `${q.status ?? 'hang'} ${(q.envelope?.events ?? []).map((e: any) => `${e.action}:${e.target?.tag ?? e.target?.digest?.slice(7, 19) ?? e.target?.repository}`).join(',')}`)
    .join(' | ');
}

/** A fresh receiver, already listening. */
export async function startReceiver(behaviour?: Behaviour): Promise<Receiver> {
  const r = new Receiver();
  if (behaviour) r.behaviour = behaviour;
  await r.start(0);
  return r;
}
