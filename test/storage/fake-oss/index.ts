/**
 * Start the fake OSS server (server.ts) on 127.0.0.1 for a test file: one access key, buckets made
 * on demand, bodies under a temporary directory removed on stop. The fake checks every request's
 * signature, so a driver with the wrong secret fails as it would on OSS.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { handle, type FakeOssState, type LoggedRequest } from './server.js';
import { Store } from './store.js';

export interface FakeOss {
  /** host:port of the server, for `storage.oss.endpoint`. */
  endpoint: string;
  url: string;
  region: string;
  accessKeyId: string;
  accessKeySecret: string;
  state: FakeOssState;
  /** A new bucket named after `label`, bound to this server's own host (so signed URLs to it work). */
  createBucket(label: string): string;
  /** `storage.oss` parameters for `bucket`, Distribution's names. */
  options(bucket: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** Every object key in the bucket under `prefix`, sorted. */
  keys(bucket: string, prefix?: string): string[];
  /** Keys with a multipart upload still open. */
  openUploads(bucket: string): string[];
  /** The requests served so far (operation names such as UploadPartCopy). */
  log: LoggedRequest[];
  /** Move the server's clock by `ms` (0 puts it back). */
  shiftClock(ms: number): void;
  stop(): Promise<void>;
}

export async function startFakeOss(): Promise<FakeOss> {
  const store = new Store(mkdtempSync(join(tmpdir(), 'wharf-fake-oss-')));
  await store.init();
  const accessKeyId = `LTAI${randomBytes(8).toString('hex')}`;
  const accessKeySecret = randomBytes(20).toString('base64');
  let shift = 0;
  const state: FakeOssState = {
    store,
    secrets: new Map([[accessKeyId, accessKeySecret]]),
    hosts: new Map(),
    now: () => Date.now() + shift,
    log: [],
  };
  const server: Server = createServer((req, res) => {
    handle(state, req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const region = 'oss-cn-hangzhou';
  return {
    endpoint,
    url: `http://${endpoint}`,
    region,
    accessKeyId,
    accessKeySecret,
    state,
    log: state.log,
    createBucket: (label) => {
      const bucket = `wharf-${label}-${randomBytes(4).toString('hex')}`.toLowerCase();
      store.createBucket(bucket);
      state.hosts.set(endpoint, bucket);
      return bucket;
    },
    options: (bucket, extra = {}) => ({
      accesskeyid: accessKeyId,
      accesskeysecret: accessKeySecret,
      region,
      endpoint,
      bucket,
      secure: false,
      ...extra,
    }),
    keys: (bucket, prefix = '') => store.list(bucket, prefix, '', '', Number.MAX_SAFE_INTEGER).contents.map((c) => c.key),
    openUploads: (bucket) => store.uploadsOf(bucket).map((u) => u.key),
    shiftClock: (ms) => {
      shift = ms;
    },
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    },
  };
}
