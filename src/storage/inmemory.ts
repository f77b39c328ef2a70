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

/** Reader chunks: large enough to be cheap, small enough to interleave with other streams. */
const READ_CHUNK = 1024 * 1024;

interface WalkNode {
  info: FileInfo;
  children: Map<string, WalkNode>;
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
    this.assertCanHoldFile(path);
    this.files.set(path, { chunks: [Buffer.from(data)], size: data.length, modTime: new Date() });
  }

  async reader(path: string, offset = 0, length?: number): Promise<Readable> {
    const f = this.file(path);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > f.size) throw new InvalidOffsetError(NAME, path, offset);
    if (length !== undefined && !(Number.isSafeInteger(length) && length >= 0)) {
      throw new RangeError(`${NAME}: invalid length ${length} for ${path}`);
    }
    const end = length === undefined ? f.size : Math.min(f.size, offset + length);
    const data = content(f);
    function* chunks(): Generator<Buffer> {
      for (let at = offset; at < end; at += READ_CHUNK) yield data.subarray(at, Math.min(end, at + READ_CHUNK));
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    checkPath(NAME, path);
    this.assertCanHoldFile(path);
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
        if (done) throw new Error(`${NAME}: writer for ${path} is closed`);
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
    checkPath(NAME, path, true);
    const f = this.files.get(path);
    if (f) return { path, size: f.size, modTime: f.modTime, isDir: false };
    const prefix = path === '/' ? '/' : `${path}/`;
    let newest: Date | null = null;
    for (const [p, file] of this.files) {
      if (p.startsWith(prefix) && (!newest || file.modTime > newest)) newest = file.modTime;
    }
    if (path === '/') return { path, size: 0, modTime: newest ?? new Date(), isDir: true };
    if (!newest) throw new PathNotFoundError(NAME, path);
    return { path, size: 0, modTime: newest, isDir: true };
  }

  async list(path: string): Promise<string[]> {
    checkPath(NAME, path, true);
    const prefix = path === '/' ? '/' : `${path}/`;
    const children = new Set<string>();
    for (const p of this.files.keys()) {
      if (!p.startsWith(prefix)) continue;
      const rest = p.slice(prefix.length);
      const slash = rest.indexOf('/');
      children.add(prefix + (slash < 0 ? rest : rest.slice(0, slash)));
    }
    // The root always exists; any other path is a directory only while something is below it.
    if (children.size === 0 && path !== '/') throw new PathNotFoundError(NAME, path);
    return [...children].sort();
  }

  async move(source: string, dest: string): Promise<void> {
    checkPath(NAME, source);
    checkPath(NAME, dest);
    const f = this.file(source);
    if (source === dest) return;
    this.assertCanHoldFile(dest);
    this.files.delete(source);
    this.files.set(dest, f);
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

  async redirectURL(_method: string, path: string): Promise<string | null> {
    checkPath(NAME, path);
    return null;
  }

  /** Walks a snapshot of the tree taken in one pass, not one scan of every file per entry. */
  async walk(path: string, visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip'): Promise<void> {
    checkPath(NAME, path, true);
    if (path !== '/' && this.files.has(path)) throw new PathNotFoundError(NAME, path);
    const prefix = path === '/' ? '/' : `${path}/`;
    const top = new Map<string, WalkNode>();
    for (const [p, file] of this.files) {
      if (!p.startsWith(prefix)) continue;
      const parts = p.slice(prefix.length).split('/');
      let level = top;
      let at = prefix.slice(0, -1);
      parts.forEach((part, i) => {
        at = `${at}/${part}`;
        const isFile = i === parts.length - 1;
        let node = level.get(part);
        if (!node) {
          node = {
            info: isFile
              ? { path: at, size: file.size, modTime: file.modTime, isDir: false }
              : { path: at, size: 0, modTime: file.modTime, isDir: true },
            children: new Map(),
          };
          level.set(part, node);
        } else if (node.info.isDir && file.modTime > node.info.modTime) {
          node.info.modTime = file.modTime;
        }
        level = node.children;
      });
    }
    if (top.size === 0 && path !== '/') throw new PathNotFoundError(NAME, path);
    const descend = async (level: Map<string, WalkNode>): Promise<void> => {
      for (const name of [...level.keys()].sort()) {
        const node = level.get(name)!;
        const verdict = await visit({ ...node.info });
        if (node.info.isDir && verdict !== 'skip') await descend(node.children);
      }
    };
    await descend(top);
  }

  /** A file cannot also be a directory: Distribution's drivers refuse that too. */
  private assertCanHoldFile(path: string): void {
    const parts = path.split('/');
    for (let i = 2; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join('/');
      if (this.files.has(ancestor)) throw new Error(`${NAME}: ${ancestor} is a file, cannot create ${path}`);
    }
    const below = `${path}/`;
    for (const p of this.files.keys()) {
      if (p.startsWith(below)) throw new Error(`${NAME}: ${path} is a directory, cannot make it a file`);
    }
  }
}
