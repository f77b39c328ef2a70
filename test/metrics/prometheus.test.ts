// Prometheus metrics (`http.debug.prometheus`): real pushes and pulls over HTTP against Wharf on a
// temp filesystem root, then the debug server's /metrics parsed and checked counter by counter.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as os from 'node:os';
import * as path from 'node:path';
import { startRegistry, type RegistrySettings, type StartedRegistry } from '../../src/cli/start.js';
import { ACCEPT_ALL, locationPath, makeSettings, pushImage, request, sha256, startServer, startUpload, withQuery } from '../server/helpers.js';
import { find, parseExposition, total, value, type Exposition } from './exposition.js';

interface Running {
  started: StartedRegistry;
  port: number;
  debug: { port: number };
  dir: string;
  close(): Promise<void>;
}

async function startWithMetrics(extra: Partial<RegistrySettings> = {}, metricsPath = '/metrics'): Promise<Running> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-metrics-'));
  const settings: RegistrySettings = {
    ...makeSettings({ dir }),
    debug: { addr: '127.0.0.1:0', prometheus: { enabled: true, path: metricsPath } },
    ...extra,
  };
  const started = await startRegistry(settings);
  assert.ok(started.debugPort, 'the debug server is listening');
  return {
    started,
    port: started.port,
    debug: { port: started.debugPort },
    dir,
    close: async () => {
      await started.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function scrape(r: { debug: { port: number } }, metricsPath = '/metrics'): Promise<Exposition> {
  const res = await request(r.debug, 'GET', metricsPath);
  assert.equal(res.status, 200, res.text);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseExposition(res.text);
}

describe('the exposition parser used by these tests', () => {
  it('reads labels with escapes, special values, and refuses samples of undeclared families', () => {
    const e = parseExposition('# HELP a_total A.\n# TYPE a_total counter\na_total{x="q\\"uote",y="back\\\\slash\\n"} 3\n# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1.5e-3\nh_count 2\n# TYPE g gauge\ng{k="1"} Nan\ng{k="2"} -Inf\n');
    assert.deepEqual(find(e, 'a_total')[0]!.labels, { x: 'q"uote', y: 'back\\slash\n' });
    assert.equal(value(e, 'h_bucket', { le: '+Inf' }), 2);
    assert.equal(value(e, 'h_sum'), 0.0015);
    assert.ok(Number.isNaN(value(e, 'g', { k: '1' })));
    assert.equal(value(e, 'g', { k: '2' }), -Infinity);
    assert.throws(() => parseExposition('b 1\n'), /no # TYPE/);
    assert.throws(() => parseExposition('# TYPE b gauge\nb{x="1} 1\n'), /unterminated|value/);
  });
});

describe('Prometheus metrics on the debug server', () => {
  let r: Running;
  before(async () => {
    r = await startWithMetrics();
  });
  after(() => r.close());

  it('serve the text format with Node runtime metrics, and no request samples before any request', async () => {
    const e = await scrape(r);
    assert.equal(e.types.get('registry_http_requests_total'), 'counter');
    assert.equal(e.types.get('registry_http_request_duration_seconds'), 'histogram');
    assert.equal(e.types.get('registry_storage_action_seconds'), 'histogram');
    assert.equal(e.types.get('registry_notifications_pending'), 'gauge');
    assert.ok(find(e, 'process_cpu_user_seconds_total').length === 1, 'prom-client default metrics');
    assert.ok(find(e, 'nodejs_heap_size_used_bytes').length === 1);
    assert.equal(find(e, 'registry_http_requests_total').length, 0);
  });

  it('count a push and a pull by route, method and status, with body bytes in and out', async () => {
    const img = await pushImage(r, 'metrics/app', 'v1');
    const manifest = await request(r, 'GET', '/v2/metrics/app/manifests/v1', { headers: { Accept: ACCEPT_ALL } });
    assert.equal(manifest.status, 200);
    const config = await request(r, 'GET', `/v2/metrics/app/blobs/${img.configDigest}`);
    const layer = await request(r, 'GET', `/v2/metrics/app/blobs/${img.layerDigest}`);
    assert.equal((await request(r, 'HEAD', `/v2/metrics/app/blobs/${img.layerDigest}`)).status, 200);
    const missing = await request(r, 'GET', `/v2/metrics/app/blobs/${sha256('nobody pushed this')}`);
    assert.equal(missing.status, 404);

    const e = await scrape(r);
    const count = (handler: string, method: string, code: string) => value(e, 'registry_http_requests_total', { handler, method, code });
    assert.equal(count('blob_upload', 'post', '202'), 2);
    assert.equal(count('blob_upload_chunk', 'put', '201'), 2);
    assert.equal(count('manifest', 'put', '201'), 1);
    assert.equal(count('manifest', 'get', '200'), 1);
    assert.equal(count('blob', 'get', '200'), 2);
    assert.equal(count('blob', 'head', '200'), 1);
    assert.equal(count('blob', 'get', '404'), 1);
    assert.equal(total(e, 'registry_http_requests_total'), 10);
    // One latency observation per request, in the same labels.
    assert.equal(value(e, 'registry_http_request_duration_seconds_count', { handler: 'blob', method: 'get' }), 3);
    assert.equal(value(e, 'registry_http_request_duration_seconds_bucket', { handler: 'blob', method: 'get', le: '+Inf' }), 3);
    assert.ok(value(e, 'registry_http_request_duration_seconds_sum', { handler: 'blob', method: 'get' }) > 0);
    // Bytes in: the two blob bodies and the manifest; bytes out: what the client received.
    assert.equal(value(e, 'registry_http_request_size_bytes_sum', { handler: 'blob_upload_chunk' }), config.body.length + layer.body.length);
    assert.equal(value(e, 'registry_http_request_size_bytes_count', { handler: 'blob_upload_chunk' }), 2);
    assert.equal(value(e, 'registry_http_request_size_bytes_sum', { handler: 'manifest' }), img.content.length);
    assert.equal(value(e, 'registry_http_response_size_bytes_sum', { handler: 'manifest' }), manifest.body.length + 0 /* PUT answers 201 with no body */);
    assert.equal(value(e, 'registry_http_response_size_bytes_sum', { handler: 'blob' }), config.body.length + layer.body.length + missing.body.length);
    assert.equal(value(e, 'registry_http_response_size_bytes_bucket', { handler: 'blob', le: '1024' }), 4, 'every blob response is under 1 KiB');
    for (const s of find(e, 'registry_http_in_flight_requests')) assert.equal(s.value, 0, `in flight ${s.labels.handler}`);
    // Caches: every lookup is a hit or a miss; the pull finds what the push put in them.
    const cache = (type: string) => value(e, 'registry_storage_cache_total', { type });
    assert.ok(cache('Request') > 0);
    assert.equal(cache('Hit') + cache('Miss'), cache('Request'));
    assert.ok(cache('Hit') >= 2, `blob-descriptor hits: ${cache('Hit')}`);
    const manifests = (cache: string, type: string) => value(e, 'registry_manifest_cache_total', { cache, type });
    assert.equal(manifests('content', 'Request'), 1);
    assert.equal(manifests('content', 'Miss'), 1, 'a PUT does not fill the content cache: the first GET reads storage');
    assert.ok(manifests('revisions', 'Hit') >= 1, 'the PUT remembered its revision link');
    // Upload sessions.
    assert.equal(value(e, 'registry_uploads_started_total'), 2);
    assert.equal(value(e, 'registry_uploads_completed_total'), 2);
    assert.equal(value(e, 'registry_uploads_in_flight'), 0);
  });

  it('time storage driver actions by driver and action', async () => {
    await pushImage(r, 'metrics/storage', 'v1');
    const e = await scrape(r);
    for (const action of ['PutContent', 'GetContent', 'Stat', 'Move', 'Writer', 'Commit']) {
      const n = value(e, 'registry_storage_action_seconds_count', { driver: 'filesystem', action });
      assert.ok(n > 0, `${action} timed (${n})`);
      assert.equal(value(e, 'registry_storage_action_seconds_bucket', { driver: 'filesystem', action, le: '+Inf' }), n);
    }
  });

  it('count a chunked PATCH body as the bytes received (no Content-Length)', async () => {
    const before = await scrape(r);
    const data = randomBytes(4000);
    const up = await startUpload(r, 'metrics/chunked');
    const patch = await request(r, 'PATCH', up.location, { chunks: [data.subarray(0, 1000), data.subarray(1000)] });
    assert.equal(patch.status, 202, patch.text);
    const put = await request(r, 'PUT', withQuery(locationPath(patch), `digest=${sha256(data)}`));
    assert.equal(put.status, 201, put.text);
    const e = await scrape(r);
    const sum = (x: Exposition) => value(x, 'registry_http_request_size_bytes_sum', { handler: 'blob_upload_chunk' });
    assert.equal(sum(e) - sum(before), 4000);
    assert.equal(value(e, 'registry_http_requests_total', { handler: 'blob_upload_chunk', method: 'patch', code: '202' }), 1);
  });

  it('label paths outside every route "unmatched"', async () => {
    assert.equal((await request(r, 'GET', '/not/a/route')).status, 404);
    const e = await scrape(r);
    assert.equal(value(e, 'registry_http_requests_total', { handler: 'unmatched', method: 'get', code: '404' }), 1);
  });

  it('offer the notifications and garbage-collection APIs to their modules', async () => {
    const m = r.started.metrics!;
    m.notifications.events.inc('audit', 'push');
    m.notifications.pending.set('audit', 3);
    m.notifications.status.inc('audit', 500);
    m.notifications.failures.inc('audit');
    m.gc.observeRun({ seconds: 2, blobsDeleted: 4, bytesReclaimed: 4096, manifestsDeleted: 1 });
    const e = await scrape(r);
    assert.equal(value(e, 'registry_notifications_events_total', { endpoint: 'audit', type: 'push' }), 1);
    assert.equal(value(e, 'registry_notifications_pending', { endpoint: 'audit' }), 3);
    assert.equal(value(e, 'registry_notifications_status_total', { endpoint: 'audit', code: '500' }), 1);
    assert.equal(value(e, 'registry_notifications_failures_total', { endpoint: 'audit' }), 1);
    assert.equal(value(e, 'registry_gc_bytes_reclaimed_total'), 4096);
    assert.equal(value(e, 'registry_gc_duration_seconds_count'), 1);
  });
});

describe('metrics settings', () => {
  it('serve the exposition on http.debug.prometheus.path only', async () => {
    const r = await startWithMetrics({}, '/custom/prom');
    try {
      await scrape(r, '/custom/prom');
      const res = await request(r.debug, 'GET', '/metrics');
      assert.equal(res.status, 404);
      assert.equal(res.text, '404 page not found\n');
    } finally {
      await r.close();
    }
  });

  it('when off, nothing is measured: no debug server, no metrics object, the driver is not wrapped', async () => {
    const s = await startServer();
    try {
      assert.equal(s.started.metrics, undefined);
      assert.equal(s.started.debugPort, undefined);
      assert.equal(s.started.registry.driver.constructor.name, 'FilesystemDriver');
    } finally {
      await s.close();
    }
  });

  it('a debug server without prometheus serves no metrics and wraps nothing', async () => {
    const r = await startWithMetrics({ debug: { addr: '127.0.0.1:0', prometheus: { enabled: false, path: '/metrics' } } });
    try {
      assert.equal((await request(r.debug, 'GET', '/metrics')).status, 404);
      assert.equal(r.started.metrics, undefined);
      assert.equal(r.started.registry.driver.constructor.name, 'FilesystemDriver');
    } finally {
      await r.close();
    }
  });
});

describe('metrics over HTTP/2 (h2c)', () => {
  it('count each request and its body bytes once', async () => {
    const base = makeSettings({});
    const r = await startWithMetrics({ http: { ...base.http, h2c: true } });
    const session = http2.connect(`http://127.0.0.1:${r.port}`);
    const h2 = (headers: http2.OutgoingHttpHeaders, body?: Buffer) =>
      new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const stream = session.request(headers);
        const parts: Buffer[] = [];
        let got: http2.IncomingHttpHeaders = {};
        stream.on('response', (h) => (got = h));
        stream.on('data', (c: Buffer) => parts.push(c));
        stream.on('end', () => resolve({ status: Number(got[':status']), headers: got, body: Buffer.concat(parts) }));
        stream.on('error', reject);
        stream.end(body);
      });
    try {
      const data = randomBytes(5000);
      const start = await h2({ ':method': 'POST', ':path': '/v2/h2/app/blobs/uploads/' });
      assert.equal(start.status, 202);
      const loc = new URL(String(start.headers.location), 'http://x');
      const put = await h2({ ':method': 'PUT', ':path': withQuery(loc.pathname + loc.search, `digest=${sha256(data)}`), 'content-length': data.length }, data);
      assert.equal(put.status, 201);
      const got = await h2({ ':method': 'GET', ':path': `/v2/h2/app/blobs/${sha256(data)}` });
      assert.ok(got.body.equals(data));
      const e = await scrape(r);
      assert.equal(value(e, 'registry_http_requests_total', { handler: 'blob', method: 'get', code: '200' }), 1);
      assert.equal(value(e, 'registry_http_request_size_bytes_sum', { handler: 'blob_upload_chunk' }), 5000);
      assert.equal(value(e, 'registry_http_response_size_bytes_sum', { handler: 'blob' }), 5000);
    } finally {
      session.close();
      await r.close();
    }
  });
});
