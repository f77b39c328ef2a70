// A real OTLP/HTTP trace receiver for the tracing tests: a Node HTTP server on 127.0.0.1 that takes
// POST /v1/traces with JSON bodies (gzip or not), as the OpenTelemetry Collector's otlphttp receiver
// does, answers 200 {} and keeps every span it was sent, flattened with its resource.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, unknown>;
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  events: string[];
  resource: Record<string, unknown>;
  startNs: bigint;
  endNs: bigint;
}

export interface ReceivedExport {
  path: string;
  headers: http.IncomingHttpHeaders;
  spans: number;
}

interface KeyValue {
  key: string;
  value: AnyValue;
}
interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: AnyValue[] };
}

function valueOf(v: AnyValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(valueOf);
  return undefined;
}

function attributes(list: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, valueOf(kv.value)]));
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly exports: ReceivedExport[] = [];
  /** Bodies that could not be read as OTLP JSON (the tests expect none). */
  readonly rejected: string[] = [];

  private constructor(
    private readonly server: http.Server,
    /** http://127.0.0.1:PORT, the value for OTEL_EXPORTER_OTLP_ENDPOINT */
    readonly url: string,
  ) {}

  static async start(): Promise<OtlpReceiver> {
    let receiver: OtlpReceiver | undefined;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        try {
          const raw = Buffer.concat(chunks);
          const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
          if (!String(req.headers['content-type']).startsWith('application/json')) throw new Error(`content-type ${req.headers['content-type']}`);
          const n = receiver!.take(JSON.parse(body.toString('utf8')));
          receiver!.exports.push({ path: req.url, headers: req.headers, spans: n });
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } catch (err) {
          receiver!.rejected.push(String(err));
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    receiver = new OtlpReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return receiver;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private take(request: any): number {
    let n = 0;
    for (const rs of request.resourceSpans ?? []) {
      const resource = attributes(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          n++;
          this.spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? '',
            name: s.name,
            kind: s.kind,
            attributes: attributes(s.attributes),
            statusCode: s.status?.code ?? 0,
            events: (s.events ?? []).map((e: { name: string }) => e.name),
            resource,
            startNs: BigInt(s.startTimeUnixNano),
            endNs: BigInt(s.endTimeUnixNano),
          });
        }
      }
    }
    return n;
  }

  /** Waits until `ready(spans)` holds; fails with what did arrive after `ms`. */
  async waitFor(what: string, ready: (spans: ReceivedSpan[]) => boolean, ms = 10_000): Promise<ReceivedSpan[]> {
    const deadline = Date.now() + ms;
    while (!ready(this.spans)) {
      if (Date.now() > deadline) {
        throw new Error(`no ${what} within ${ms} ms; received: ${this.spans.map((s) => s.name).join(', ') || 'nothing'}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return this.spans;
  }

  /** Spans whose parent is `parent`. */
  children(parent: ReceivedSpan): ReceivedSpan[] {
    return this.spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
