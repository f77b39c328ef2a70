/** Helpers the object-store drivers' own tests (test/storage/*-driver.test.ts) share. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Registry } from '../../src/registry/registry.js';
import type { StorageDriver } from '../../src/storage/driver.js';

export const MiB = 1024 * 1024;

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A request body of these chunks, as the registry's upload calls take it. */
export async function* body(...chunks: Buffer[]): AsyncIterable<Buffer> {
  for (const c of chunks) yield c;
}

/** The hex SHA-256 of some bytes. */
export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Where Distribution keeps a blob's bytes, below the registry's root: `docker/registry/v2/blobs/sha256/<2>/<hex>/data`. */
export function blobDataPath(digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return `docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
}

/**
 * A blob uploaded in three chunks through two registry instances on drivers of the same store:
 * A starts the upload and takes the first chunk, B reports its size (the hash is rebuilt from
 * storage) and takes the second, A finishes with the third, and B serves the blob byte for byte.
 * Returns the first registry (to clean up through its driver) and the blob's digest.
 */
export async function chunkedUploadAcrossRegistries(make: () => StorageDriver, chunks: [Buffer, Buffer, Buffer]): Promise<{ a: Registry; digest: string }> {
  const a = new Registry(make(), { deleteEnabled: true });
  const b = new Registry(make(), { deleteEnabled: true });
  const blob = Buffer.concat(chunks);
  const digest = `sha256:${sha(blob)}`;
  const [first, second, last] = chunks;
  const { id } = await a.uploads.start('team/app');
  assert.equal((await a.uploads.append('team/app', id, body(first), 0)).size, first.length);
  assert.equal((await b.uploads.status('team/app', id)).size, first.length);
  assert.equal((await b.uploads.append('team/app', id, body(second), first.length)).size, first.length + second.length);
  const desc = await a.uploads.finish('team/app', id, digest, body(last), first.length + second.length);
  assert.deepEqual(desc, { digest, size: blob.length });
  assert.ok((await readAll(await b.blobs.open(digest, 0, blob.length))).equals(blob));
  return { a, digest };
}
