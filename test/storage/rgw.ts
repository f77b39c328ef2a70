/**
 * Ceph RGW for the s3 tests: started by scripts/services/ceph-rgw-start.sh on first use (a
 * fixed state dir under /tmp, so one RGW serves every test file and later runs; the script
 * takes a lock, so test files starting it at once are safe). Each caller gets its own bucket
 * and removes it when done, so the memstore OSD does not fill up.
 */
import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { startCephRgw } from './service-script.js';

export interface Rgw {
  endpoint: string;
  region: string;
  accessKey: string;
  secretKey: string;
  /** Milliseconds the start script took (about 0.1 s when RGW was already up). */
  startMs: number;
  client: S3Client;
  /** `storage.s3` parameters for `bucket`, Distribution's names. */
  options(bucket: string, extra?: Record<string, unknown>): Record<string, unknown>;
  createBucket(label: string): Promise<string>;
  /** Delete every object and multipart upload in the bucket, then the bucket. */
  removeBucket(bucket: string): Promise<void>;
}

let started: Promise<Rgw> | null = null;

export function startRgw(): Promise<Rgw> {
  started ??= start();
  return started;
}

async function start(): Promise<Rgw> {
  const { vars, startMs } = await startCephRgw();
  const endpoint = vars.S3_ENDPOINT;
  const region = vars.S3_REGION;
  const accessKey = vars.S3_ACCESS_KEY;
  const secretKey = vars.S3_SECRET_KEY;
  const client = new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    region,
    accessKey,
    secretKey,
    startMs,
    client,
    options: (bucket, extra = {}) => ({
      accesskey: accessKey,
      secretkey: secretKey,
      region,
      regionendpoint: endpoint,
      bucket,
      secure: false,
      ...extra,
    }),
    createBucket: async (label) => {
      const bucket = `wharf-${label}-${randomBytes(4).toString('hex')}`.toLowerCase();
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      return bucket;
    },
    removeBucket: async (bucket) => {
      for (;;) {
        const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 }));
        const keys = (res.Contents ?? []).map((c) => ({ Key: c.Key! }));
        if (keys.length === 0) break;
        await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
      }
      for (;;) {
        const res = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
        if (!res.Uploads?.length) break;
        for (const u of res.Uploads) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! }));
      }
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
    },
  };
}

/** Multipart uploads still open in `bucket` (a driver must not leak them). */
export async function openUploads(rgw: Rgw, bucket: string): Promise<string[]> {
  const res = await rgw.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (res.Uploads ?? []).map((u) => u.Key!);
}
