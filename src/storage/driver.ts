/**
 * The storage-driver contract: a small, path-based object store in the spirit of
 * Distribution's `storagedriver.StorageDriver`. Paths are absolute, '/'-separated,
 * made of [A-Za-z0-9._-] segments (see `checkPath`). Every driver runs the shared
 * conformance suite in test/storage/driver-conformance.ts unchanged.
 */
import type { Readable, Writable } from 'node:stream';

export interface FileInfo {
  path: string;
  /** Bytes for files; 0 for directories. */
  size: number;
  modTime: Date;
  isDir: boolean;
}

/**
 * An append-capable writer, one session of writing to `path`.
 *
 * - `writer(path, false)` starts the file afresh; `writer(path, true)` continues what earlier
 *   sessions wrote (closed or committed), and starts empty (size 0) when nothing was written yet.
 *   Appending to a committed file is only required to work when that file is empty
 *   (object stores cannot append to a finished object).
 * - Only `commit()` guarantees the bytes are visible at `path`. Before it, what a reader of
 *   `path` sees is backend-specific (filesystem writes in place; object stores show nothing),
 *   so callers do not read a path that a writer is still filling.
 * - `close()` ends the session and keeps what was written, so a later `writer(path, true)`
 *   resumes it: this is how an upload survives a restart.
 * - `write(chunk)` may keep a reference to `chunk` until `close()`/`commit()`: never reuse it,
 *   unless the writer says `releasesChunks` (then the chunk is free again once write() resolves).
 * - After `close()`, `commit()` or `cancel()`, `write()` rejects. `commit()` then `close()` is fine.
 */
export interface FileWriter {
  /** Bytes written so far, including those of earlier sessions when appending. */
  readonly size: number;
  /** True when `write` is done with a chunk once its promise resolves (it copies or writes it out). */
  readonly releasesChunks?: boolean;
  /** Write one chunk; resolves when the driver can take more (backpressure). */
  write(chunk: Buffer): Promise<void>;
  /** Flush and release resources; what was written stays appendable. */
  close(): Promise<void>;
  /** Make the written bytes visible at `path`, atomically where the backend allows. */
  commit(): Promise<void>;
  /** Discard everything written under this path. */
  cancel(): Promise<void>;
}

/** The client a blob GET comes from, as Distribution sees it (proxy headers first). */
export interface RedirectClient {
  /** The client's IP address (IPv4-mapped IPv6 addresses given as IPv4). */
  ip: string;
}

/**
 * Every method rejects (never throws synchronously) with InvalidPathError for a path that
 * `checkPath` refuses. '/' names the root directory, which always exists: it is valid for
 * `stat`, `list` and `walk` only. A "directory" is any path with something below it.
 */
export interface StorageDriver {
  readonly name: string;
  /** The whole content of a small file. Throws PathNotFoundError (also for a directory). */
  getContent(path: string): Promise<Buffer>;
  /** Replace the file's content atomically: readers see the old or the new bytes, never a mix. */
  putContent(path: string, content: Buffer): Promise<void>;
  /**
   * A byte stream (not object mode) of the file from `offset`, at most `length` bytes (fewer
   * when the file ends first). offset == size gives an empty stream; a negative offset or one
   * beyond the end throws InvalidOffsetError. Throws PathNotFoundError (also for a directory).
   */
  reader(path: string, offset?: number, length?: number): Promise<Readable>;
  /**
   * Optional fast path: write the same bytes `reader` would give into `destination` and end
   * it, honouring its backpressure. Callers fall back to `reader` when a driver lacks it.
   */
  sendTo?(path: string, offset: number, length: number | undefined, destination: Writable): Promise<void>;
  /** A writer for `path`; append=true resumes a previous session (see FileWriter). */
  writer(path: string, append: boolean): Promise<FileWriter>;
  /** Throws PathNotFoundError. Directories have size 0 and isDir true. */
  stat(path: string): Promise<FileInfo>;
  /**
   * Absolute paths of the direct children of a directory, sorted, without trailing '/'.
   * Throws PathNotFoundError for a missing path or a file; list('/') of an empty store is [].
   */
  list(path: string): Promise<string[]>;
  /** Move a file, creating `dest`'s parents and replacing any file at `dest`, atomically where the backend allows. Throws PathNotFoundError for a missing source. */
  move(source: string, dest: string): Promise<void>;
  /** Delete a file or a whole tree ('/a/b' never touches '/a/bc'). Throws PathNotFoundError. */
  delete(path: string): Promise<void>;
  /**
   * A URL the client may fetch the content from directly, or null to serve it ourselves.
   * `client` is who asked (storage middleware such as cloudfront choose by the client's IP).
   */
  redirectURL(method: string, path: string, client?: RedirectClient): Promise<string | null>;
  /** Visit every file and directory below `path`, depth first, in lexical order. Return 'skip' to not descend. Throws PathNotFoundError. */
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
const SEGMENT_PATTERN = /^[A-Za-z0-9._-]+$/;

/**
 * Distribution's path rule: absolute, no empty segments, no '.' or '..' segments, a safe
 * alphabet. '/' itself is accepted only with allowRoot (stat, list, walk): no file lives there
 * and nothing may delete or move it.
 */
export function checkPath(driver: string, path: string, allowRoot = false): void {
  if (path === '/' && allowRoot) return;
  if (!PATH_PATTERN.test(path) || path.split('/').some((s) => s === '.' || s === '..')) {
    throw new InvalidPathError(driver, path);
  }
}

/** Whether `name` could be one segment of a valid path (drivers hide anything else they find). */
export function isValidSegment(name: string): boolean {
  return SEGMENT_PATTERN.test(name) && name !== '.' && name !== '..';
}

export function isNotFound(err: unknown): err is PathNotFoundError {
  return err instanceof PathNotFoundError;
}
