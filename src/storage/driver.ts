/**
 * The storage-driver contract: a small, path-based object store in the spirit of
 * Distribution's `storagedriver.StorageDriver`. Paths are absolute, '/'-separated,
 * made of [A-Za-z0-9._-] segments (see `checkPath`). Every driver runs the shared
 * conformance suite in test/storage/driver-conformance.ts unchanged.
 */
import type { Readable } from 'node:stream';

export interface FileInfo {
  path: string;
  /** Bytes for files; 0 for directories. */
  size: number;
  modTime: Date;
  isDir: boolean;
}

/**
 * An append-capable writer. Bytes become visible at `path` only after `commit()`;
 * until then a reader sees the previously committed content (or nothing).
 * A writer opened with append=true continues a previous, uncommitted or committed session.
 */
export interface FileWriter {
  /** Bytes written so far, including those of earlier sessions when appending. */
  readonly size: number;
  /** Write one chunk; resolves when the driver can take more (backpressure). */
  write(chunk: Buffer): Promise<void>;
  /** Flush and release resources; what was written stays appendable. */
  close(): Promise<void>;
  /** Make the written bytes visible at `path`, atomically. */
  commit(): Promise<void>;
  /** Discard everything written under this path. */
  cancel(): Promise<void>;
}

export interface StorageDriver {
  readonly name: string;
  /** The whole content of a small file. Throws PathNotFoundError. */
  getContent(path: string): Promise<Buffer>;
  /** Replace the file's content atomically: readers see the old or the new bytes, never a mix. */
  putContent(path: string, content: Buffer): Promise<void>;
  /** A stream of the file from `offset`, at most `length` bytes. Throws PathNotFoundError, InvalidOffsetError. */
  reader(path: string, offset?: number, length?: number): Promise<Readable>;
  /** A writer for `path`; append=true resumes a previous session. */
  writer(path: string, append: boolean): Promise<FileWriter>;
  /** Throws PathNotFoundError. Directories exist when they hold something. */
  stat(path: string): Promise<FileInfo>;
  /** Absolute paths of the direct children of a directory. Throws PathNotFoundError. */
  list(path: string): Promise<string[]>;
  /** Move a file, replacing any file at `dest`, atomically where the backend allows. */
  move(source: string, dest: string): Promise<void>;
  /** Delete a file or a whole tree. Throws PathNotFoundError. */
  delete(path: string): Promise<void>;
  /** A URL the client may fetch the content from directly, or null to serve it ourselves. */
  redirectURL(method: string, path: string): Promise<string | null>;
  /** Visit every file and directory below `path`, depth first, in lexical order. Return 'skip' to not descend. */
  walk(path: string, visit: (info: FileInfo) => Promise<void | 'skip'> | void | 'skip'): Promise<void>;
}

export class StorageError extends Error {
  constructor(
    message: string,
    readonly driver: string,
    readonly path: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class PathNotFoundError extends StorageError {
  constructor(driver: string, path: string) {
    super(`${driver}: path not found: ${path}`, driver, path);
  }
}

export class InvalidPathError extends StorageError {
  constructor(driver: string, path: string) {
    super(`${driver}: invalid path: ${JSON.stringify(path)}`, driver, path);
  }
}

export class InvalidOffsetError extends StorageError {
  constructor(
    driver: string,
    path: string,
    readonly offset: number,
  ) {
    super(`${driver}: invalid offset ${offset} for ${path}`, driver, path);
  }
}

const PATH_PATTERN = /^(\/[A-Za-z0-9._-]+)+$/;

/** Distribution's path rule: absolute, no empty segments, no '.' or '..' tricks, a safe alphabet. */
export function checkPath(driver: string, path: string): void {
  if (path === '/') return;
  if (!PATH_PATTERN.test(path) || path.split('/').some((s) => s === '.' || s === '..')) {
    throw new InvalidPathError(driver, path);
  }
}

export function isNotFound(err: unknown): err is PathNotFoundError {
  return err instanceof PathNotFoundError;
}
