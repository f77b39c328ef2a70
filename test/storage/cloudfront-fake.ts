/**
 * CloudFront's side of signed URLs, written from AWS's documentation ("Create a signed URL using a
 * canned policy"): the check of `Expires`, `Signature` and `Key-Pair-Id`, and a fake distribution
 * on 127.0.0.1 that refuses (403) what does not verify and serves the rest from an S3 bucket, so a
 * real client can follow the cloudfront middleware's redirects.
 */
import assert from 'node:assert/strict';
import { verify, type KeyObject } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';

export interface VerifiedURL {
  /** The URL without its query: the policy's Resource. */
  resource: string;
  expires: number;
  keyPairId: string;
}

/** Throws (an AssertionError) unless `location` is a canned-policy URL signed by the private half of `key`. */
export function verifyCloudFrontURL(location: string, key: KeyObject): VerifiedURL {
  const [resource, query] = location.split('?');
  assert.match(query ?? '', /^Expires=\d+&Signature=[A-Za-z0-9~_-]+&Key-Pair-Id=[A-Za-z0-9_-]+$/, `the parameters of ${location}`);
  const params = new URLSearchParams(query);
  const expires = Number(params.get('Expires'));
  // CloudFront's base64: '-' '_' '~' stand for '+' '=' '/'.
  const signature = Buffer.from(params.get('Signature')!.replace(/-/g, '+').replace(/_/g, '=').replace(/~/g, '/'), 'base64');
  const policy = `{"Statement":[{"Resource":${JSON.stringify(resource)},"Condition":{"DateLessThan":{"AWS:EpochTime":${expires}}}}]}`;
  assert.ok(verify('sha1', Buffer.from(policy), key, signature), `the signature verifies for ${policy}`);
  return { resource, expires, keyPairId: params.get('Key-Pair-Id')! };
}

export interface FakeCloudFront {
  /** http://127.0.0.1:PORT/ (with the trailing slash, as a baseurl) */
  url: string;
  /** Every request: path, status. */
  requests: { path: string; status: number }[];
  close(): Promise<void>;
}

/** A distribution whose origin is `bucket`: the URL path is the object key. */
export async function startFakeCloudFront(opts: { client: S3Client; bucket: string; keyPairId: string; publicKey: KeyObject }): Promise<FakeCloudFront> {
  const requests: FakeCloudFront['requests'] = [];
  let base = '';
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (status: number, message: string) => {
      requests.push({ path, status });
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(message);
    };
    void (async () => {
      let signed: VerifiedURL;
      try {
        signed = verifyCloudFrontURL(`${base}${req.url!.slice(1)}`, opts.publicKey);
      } catch (err) {
        return answer(403, `AccessDenied: ${(err as Error).message}`);
      }
      if (signed.keyPairId !== opts.keyPairId) return answer(403, 'AccessDenied: unknown key pair');
      if (signed.expires * 1000 <= Date.now()) return answer(403, 'AccessDenied: expired');
      const object = await opts.client
        .send(new GetObjectCommand({ Bucket: opts.bucket, Key: decodeURIComponent(path.slice(1)) }))
        .catch((err: Error) => err);
      if (object instanceof Error) return answer(404, `origin: ${object.message}`);
      requests.push({ path, status: 200 });
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': object.ContentLength ?? 0 });
      if (req.method === 'HEAD') return void res.end();
      await pipeline(object.Body as Readable, res);
    })().catch((err: Error) => res.destroy(err));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url: base,
    requests,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
