/**
 * The inmemory driver: files in a Map, directories implied by their contents, as
 * Distribution's `inmemory`. Meant for tests and throwaway registries.
 */
import { Readable } from 'node:stream';
import {
  checkPath,
  InvalidOffsetError,
  PathNotFoundError,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
} from './driver.js';

const NAME = 'inmemory';

interface MemFile {
  chunks: Buffer[];
  size: number;
  modTime: Date;
}

function content(file: MemFile): Buffer {
  if (file.chunks.length !== 1) file.chunks = [Buffer.concat(file.chunks)];
  return file.chunks[0] ?? Buffer.alloc(0);
}

export class InMemoryDriver implements StorageDriver {
  readonly name = NAME;
  private readonly files = new Map<string, MemFile>();

  private file(path: string): MemFile {
    checkPath(NAME, path);
    const f = this.files.get(path);
    if (!f) throw new PathNotFoundError(NAME, path);
    return f;
  }

  async getContent(path: string): Promise<Buffer> {
    return Buffer.from(content(this.file(path)));
  }

  async putContent(path: string, data: Buffer): Promise<void> {
    checkPath(NAME, path);
    this.assertNoFileAncestor(path);
    this.files.set(path, { chunks: [Buffer.from(data)], size: data.length, modTime: new Date() });
  }

  async reader(path: string, offset = 0, length?: number): Promise<Readable> {
    const f = this.file(path);
    if (offset < 0 || offset > f.size) throw new InvalidOffsetError(NAME, path, offset);
    const end = length === undefined ? f.size : Math.min(f.size, offset + length);
    return Readable.from([content(f).subarray(offset, end)].filter((b) => b.length > 0));
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    checkPath(NAME, path);
    this.assertNoFileAncestor(path);
    const existing = this.files.get(path);
    const staged: Buffer[] = append && existing ? [content(existing)] : [];
    let size = staged.reduce((n, b) => n + b.length, 0);
    let done = false;
    const files = this.files;
    const save = () => files.set(path, { chunks: staged.slice(), size, modTime: new Date() });
    return {
      get size() {
        return size;
      },
      async write(chunk: Buffer) {
        if (done) throw new Error('writer is closed');
        staged.push(Buffer.from(chunk));
        size += chunk.length;
      },
      async close() {
        if (!done) save();
        done = true;
      },
      async commit() {
        if (!done) save();
        done = true;
      },
      async cancel() {
        done = true;
        files.delete(path);
      },
    };
  }

  async stat(path: string): Promise<FileInfo> {
    checkPath(NAME, path);
    const f = this.files.get(path);
    if (f) return { path, size: f.size, modTime: f.modTime, isDir: false };
    const prefix = path === '/' ? '/' : `${path}/`;
    let newest: Date | null = null;
    for (const [p, file] of this.files) {
      if (p.startsWith(prefix) && (!newest || file.modTime > newest)) newest = file.modTime;
    }
    if (!newest) throw new PathNotFoundError(NAME, path);
    return { path, size: 0, modTime: newest, isDir: true };
  }

  async list(path: string): Promise<string[]> {
    checkPath(NAME, path);
    const prefix = path === '/' ? '/' : `${path}/`;
    const children = new Set<string>();
    for (const p of this.files.keys()) {
      if (!p.startsWith(prefix)) continue;
      const rest = p.slice(prefix.length);
      children.add(prefix + rest.split('/')[0]);
    }
    if (children.size === 0) {
      if (this.files.has(path)) return [];
      throw new PathNotFoundError(NAME, path);
    }
    return [...children].sort();
  }

  async move(source: string, dest: string): Promise<void> {
    const f = this.file(source);
    checkPath(NAME, dest);
    this.files.delete(source);
    this.files.set(dest, { ...f, modTime: new Date() });
  }

  async delete(path: string): Promise<void> {
    checkPath(NAME, path);
    const prefix = `${path}/`;
    let found = this.files.delete(path);
    for (const p of [...this.files.keys()]) {
      if (p.startsWith(prefix)) {
        this.files.delete(p);
        found = true;
      }
    }
    if (!found) throw new PathNotFoundError(NAME, path);
  }

  async redirectURL(): Promise<string | null> {
    return null;
  }

  async walk(path: string, visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip'): Promise<void> {
    for (const child of await this.list(path)) {
      let info: FileInfo;
      try {
        info = await this.stat(child);
      } catch (err) {
        if (err instanceof PathNotFoundError) continue;
        throw err;
      }
      const verdict = await visit(info);
      if (info.isDir && verdict !== 'skip') await this.walk(child, visit);
    }
  }

  /** A file cannot also be a directory: Distribution's drivers refuse that too. */
  private assertNoFileAncestor(path: string): void {
    const parts = path.split('/');
    for (let i = 2; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join('/');
      if (this.files.has(ancestor)) throw new Error(`${NAME}: ${ancestor} is a file, cannot create ${path}`);
    }
  }
}
