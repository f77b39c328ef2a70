// Shared by the tracing tests: a Wharf environment with only the OTEL_* variables a test sets, a
// small valid OCI image pushed with plain HTTP, and span lookups.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { finishUpload, httpRequest, show, startUpload } from '../e2e/clients.js';
import { run, tempDir } from '../e2e/process.js';
import { sha256 } from '../e2e/images.js';
import type { ReceivedSpan } from './otlp-receiver.js';

/** Every OTEL_* variable of the test's own environment blanked (empty is unset), then `set`. */
export function otelEnv(set: Record<string, string>): Record<string, string> {
  const blank = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('OTEL_')).map((k) => [k, '']));
  return { ...blank, ...set };
}

export interface PushedImage {
  manifestDigest: string;
  layerDigest: string;
  configDigest: string;
}

/** A one-layer OCI image (a real gzipped tar) pushed to REPO:TAG with monolithic uploads. */
export async function pushImage(base: string, repo: string, tag: string): Promise<PushedImage> {
  const dir = tempDir('tracing-image');
  fs.writeFileSync(path.join(dir, 'hello.txt'), `hello from ${repo}:${tag}\n`);
  const tgz = path.join(dir, 'layer.tar.gz');
  await run('tar', ['-czf', tgz, '-C', dir, 'hello.txt']);
  const layer = fs.readFileSync(tgz);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(gunzipSync(layer))] } }),
  );
  for (const blob of [layer, config]) {
    const r = await finishUpload(await startUpload(base, repo), sha256(blob), blob);
    if (r.status !== 201) throw new Error(`blob upload failed: ${show(r)}`);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
    }),
  );
  const put = await httpRequest('PUT', `${base}/v2/${repo}/manifests/${tag}`, {
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (put.status !== 201) throw new Error(`manifest push failed: ${show(put)}`);
  return { manifestDigest: sha256(manifest), layerDigest: sha256(layer), configDigest: sha256(config) };
}

/** Server spans of requests to `urlPath` with `method`. */
export function serverSpans(spans: ReceivedSpan[], method: string, urlPath: string): ReceivedSpan[] {
  return spans.filter((s) => s.kind === 2 && s.attributes['http.request.method'] === method && s.attributes['url.path'] === urlPath);
}

/** A random W3C trace id and parent span id. */
export function randomTraceparent(): { traceId: string; parentId: string; header: string } {
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  const traceId = `4bf92f35${hex(24)}`;
  const parentId = `00f067aa${hex(8)}`;
  return { traceId, parentId, header: `00-${traceId}-${parentId}-01` };
}
