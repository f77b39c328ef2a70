/**
 * The fake Cloud Storage server's state: buckets of objects whose bytes live in files on disk
 * (each version its own file, so a reader streaming an old version is not disturbed by a new
 * one), resumable upload sessions, and rewrite jobs. Object resources carry what the JSON API
 * documents: generation, metageneration, size, contentType, custom metadata, md5Hash and crc32c
 * (base64, big-endian), timeCreated and updated.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface StoredObject {
  bucket: string;
  name: string;
  generation: string;
  metageneration: number;
  size: number;
  contentType: string;
  metadata: Record<string, string>;
  md5Hash: string;
  crc32c: string;
  timeCreated: string;
  updated: string;
  /** Where the bytes are. */
  file: string;
}

export interface UploadSession {
  id: string;
  bucket: string;
  name: string;
  contentType: string;
  metadata: Record<string, string>;
  /** The bytes received so far (exactly `persisted` of them). */
  file: string;
  persisted: number;
  state: 'active' | 'done' | 'cancelled';
  result?: StoredObject;
}

export interface ListResult {
  items: StoredObject[];
  prefixes: string[];
  nextPageToken?: string;
}

/** CRC-32C (Castagnoli), as Cloud Storage reports it. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export class Crc32c {
  private crc = 0xffffffff;

  update(data: Buffer): this {
    let c = this.crc;
    for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
    this.crc = c >>> 0;
    return this;
  }

  base64(): string {
    const out = Buffer.alloc(4);
    out.writeUInt32BE((this.crc ^ 0xffffffff) >>> 0);
    return out.toString('base64');
  }
}

/** md5 and crc32c of a file, read as a stream. */
export async function hashFile(file: string): Promise<{ md5Hash: string; crc32c: string; size: number }> {
  const md5 = createHash('md5');
  const crc = new Crc32c();
  let size = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    md5.update(chunk as Buffer);
    crc.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { md5Hash: md5.digest('base64'), crc32c: crc.base64(), size };
}

export class FakeStore {
  private seq = 0;
  private lastGeneration = Date.now() * 1000;
  private readonly buckets = new Map<string, Map<string, StoredObject>>();
  readonly sessions = new Map<string, UploadSession>();
  readonly dataDir: string;

  constructor(dir: string) {
    this.dataDir = path.join(dir, 'data');
    fs.mkdirSync(this.dataDir, { recursive: true });
  }

  /** A new, unused file name for bytes. */
  newFile(): string {
    return path.join(this.dataDir, `${++this.seq}`);
  }

  createBucket(name: string): void {
    if (!this.buckets.has(name)) this.buckets.set(name, new Map());
  }

  hasBucket(name: string): boolean {
    return this.buckets.has(name);
  }

  get(bucket: string, name: string): StoredObject | undefined {
    return this.buckets.get(bucket)?.get(name);
  }

  /** Every object name of a bucket, sorted (what a test inspects). */
  names(bucket: string): string[] {
    return [...(this.buckets.get(bucket)?.keys() ?? [])].sort();
  }

  /**
   * Make the bytes in `file` the live version of the object, replacing the previous version in
   * one step. `expect` holds hashes the client declared: a mismatch refuses the object.
   */
  async commit(
    bucket: string,
    name: string,
    file: string,
    attrs: { contentType?: string; metadata?: Record<string, string> },
    expect: { md5Hash?: string; crc32c?: string } = {},
  ): Promise<StoredObject> {
    const objects = this.buckets.get(bucket);
    if (!objects) throw new Error(`no bucket ${bucket}`);
    const hashes = await hashFile(file);
    if (expect.md5Hash !== undefined && expect.md5Hash !== hashes.md5Hash) {
      fs.rmSync(file, { force: true });
      throw new HashMismatch(`Provided MD5 hash "${expect.md5Hash}" doesn't match calculated MD5 hash "${hashes.md5Hash}".`);
    }
    if (expect.crc32c !== undefined && expect.crc32c !== hashes.crc32c) {
      fs.rmSync(file, { force: true });
      throw new HashMismatch(`Provided CRC32C "${expect.crc32c}" doesn't match calculated CRC32C "${hashes.crc32c}".`);
    }
    const now = new Date().toISOString();
    const object: StoredObject = {
      bucket,
      name,
      generation: String(++this.lastGeneration),
      metageneration: 1,
      size: hashes.size,
      contentType: attrs.contentType || 'application/octet-stream',
      metadata: attrs.metadata ?? {},
      md5Hash: hashes.md5Hash,
      crc32c: hashes.crc32c,
      timeCreated: now,
      updated: now,
      file,
    };
    const previous = objects.get(name);
    objects.set(name, object);
    // Readers already streaming the old version keep their open file; new ones get the new one.
    if (previous) fs.rm(previous.file, { force: true }, () => undefined);
    return object;
  }

  delete(bucket: string, name: string): boolean {
    const objects = this.buckets.get(bucket);
    const object = objects?.get(name);
    if (!objects || !object) return false;
    objects.delete(name);
    fs.rm(object.file, { force: true }, () => undefined);
    return true;
  }

  /**
   * Objects whose names start with `prefix`, in name order; with a delimiter, names that go on
   * past it are rolled into one prefix each. Pages hold at most `maxResults` entries (objects
   * and prefixes); the page token says where the next page starts.
   */
  list(bucket: string, opts: { prefix?: string; delimiter?: string; maxResults?: number; pageToken?: string }): ListResult {
    const prefix = opts.prefix ?? '';
    const max = Math.max(1, Math.min(opts.maxResults ?? 1000, 1000));
    let after = '';
    if (opts.pageToken) after = Buffer.from(opts.pageToken, 'base64url').toString('utf8');
    const out: ListResult = { items: [], prefixes: [] };
    for (const name of this.names(bucket)) {
      if (!name.startsWith(prefix) || name <= after) continue;
      let entry: string = name;
      if (opts.delimiter) {
        const cut = name.indexOf(opts.delimiter, prefix.length);
        if (cut >= 0) entry = name.slice(0, cut + opts.delimiter.length);
      }
      if (entry !== name && out.prefixes[out.prefixes.length - 1] === entry) continue;
      if (out.items.length + out.prefixes.length === max) {
        // Resume after the last entry; a prefix resumes after every name below it.
        const last = out.prefixes.length && out.prefixes[out.prefixes.length - 1] > (out.items[out.items.length - 1]?.name ?? '') ? out.prefixes[out.prefixes.length - 1] + '\uffff' : out.items[out.items.length - 1].name;
        out.nextPageToken = Buffer.from(last, 'utf8').toString('base64url');
        break;
      }
      if (entry === name) out.items.push(this.get(bucket, name)!);
      else out.prefixes.push(entry);
    }
    return out;
  }

  startSession(bucket: string, name: string, contentType: string, metadata: Record<string, string>): UploadSession {
    const session: UploadSession = {
      id: randomBytes(16).toString('base64url'),
      bucket,
      name,
      contentType,
      metadata,
      file: this.newFile(),
      persisted: 0,
      state: 'active',
    };
    fs.writeFileSync(session.file, '');
    this.sessions.set(session.id, session);
    return session;
  }
}

export class HashMismatch extends Error {}
