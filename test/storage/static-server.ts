/**
 * A plain node:http file server over a directory, standing in for a CDN or web server in front
 * of the storage in the redirect-middleware tests. It counts what it serves, so a test can tell
 * that blob bytes came through it and not through the registry.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface ServedRequest {
  method: string;
  /** The URL path as requested (still %-escaped). */
  path: string;
  /** -1 when the body was cut off. */
  status: number;
  /** Body bytes sent (the file's size for a 200 GET). */
  bytes: number;
}

export interface StaticServer {
  /** http://127.0.0.1:PORT */
  url: string;
  requests: ServedRequest[];
  close(): Promise<void>;
}

/** Serves `root` (GET and HEAD) below URL path `prefix` ('' or e.g. '/cdn'). */
export async function startStaticServer(root: string, prefix = ''): Promise<StaticServer> {
  const base = resolve(root);
  const requests: ServedRequest[] = [];
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const record = (status: number, bytes = 0) => requests.push({ method: req.method ?? '', path, status, bytes });
    void (async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405).end();
        return record(405);
      }
      let file: string | null = null;
      if (path.startsWith(`${prefix}/`)) {
        const candidate = join(base, decodeURIComponent(path.slice(prefix.length)));
        if (candidate.startsWith(base + sep)) file = candidate;
      }
      const info = file ? await stat(file).catch(() => null) : null;
      if (!file || !info?.isFile()) {
        res.writeHead(404, { 'Content-Length': 0 }).end();
        return record(404);
      }
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': info.size });
      if (req.method === 'HEAD') {
        res.end();
        return record(200);
      }
      // Recorded before the body goes out: the client may see the end before pipeline() resolves.
      const entry: ServedRequest = { method: 'GET', path, status: 200, bytes: info.size };
      requests.push(entry);
      const source = createReadStream(file);
      await pipeline(source, res).catch((err: Error) => {
        // A client that closes once it has the whole body can beat 'finish': only a short body counts as cut off.
        if (source.bytesRead === info.size && res.writableEnded) return;
        entry.status = -1;
        throw err;
      });
    })().catch((err: Error) => {
      if (!res.headersSent) record(500);
      res.destroy(err);
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
