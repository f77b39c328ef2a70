/** Content digests: hashing streams and buffers with the algorithm a digest names. */
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';

export const CANONICAL_ALGORITHM = 'sha256';

export function newHash(algorithm: string = CANONICAL_ALGORITHM): Hash {
  return createHash(algorithm);
}

export function digestOf(content: Buffer, algorithm: string = CANONICAL_ALGORITHM): string {
  return `${algorithm}:${createHash(algorithm).update(content).digest('hex')}`;
}

/** Hash a whole stream; returns the digest and the number of bytes seen. */
export async function hashStream(stream: Readable, hash: Hash = newHash()): Promise<{ hash: Hash; bytes: number }> {
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hash, bytes };
}
