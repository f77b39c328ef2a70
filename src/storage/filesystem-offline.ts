/**
 * The filesystem driver for one-shot commands that own the process (`wharf garbage-collect`).
 * A server must never use it: reads, listings and stats are synchronous system calls that
 * block the event loop.
 *
 * Why: a collection makes tens of thousands of tiny calls, and each asynchronous one is a
 * round trip through libuv's thread pool (a request, a futex wake-up, a callback, a promise)
 * that costs several times the system call itself. Deletes are the exception: they go to the
 * thread pool, many at once, because an unlink or rmdir can wait on the device (ext4 mounted
 * with `discard` trims the freed blocks inside the call) and the waits then overlap. A tree is
 * removed in place, without the rename FilesystemDriver uses to hide it from concurrent readers:
 * an offline command has none. Writes are FilesystemDriver's. Errors map as in FilesystemDriver.
 */
import { readdirSync, readFileSync, statSync, type Dirent } from 'node:fs';
import { rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { PathNotFoundError, type FileInfo } from './driver.js';
import { childPaths, errCode, FilesystemDriver, fileInfo, isENOENT, listFailure, missingStat, readFailure, statFailure, sweepLeftovers } from './filesystem.js';

const NAME = 'filesystem';
/** Synchronous work between two turns of the event loop. */
const SLICE_MS = 2;

export class OfflineFilesystemDriver extends FilesystemDriver {
  private sliceStart = performance.now();
  private nextTurn: Promise<void> | null = null;

  /**
   * Every few milliseconds of synchronous calls, let the event loop turn: deletes finished in
   * the thread pool are seen and the next ones start, so they overlap the reads and listings.
   * Every caller that arrives once the slice is used up waits for the same turn.
   */
  private turn(): Promise<void> | undefined {
    if (this.nextTurn) return this.nextTurn;
    if (performance.now() - this.sliceStart < SLICE_MS) return undefined;
    this.nextTurn = yieldToEventLoop().then(() => {
      this.sliceStart = performance.now();
      this.nextTurn = null;
    });
    return this.nextTurn;
  }

  override async getContent(path: string): Promise<Buffer> {
    await this.turn();
    const full = this.full(path);
    try {
      return readFileSync(full);
    } catch (err) {
      return readFailure(path, err);
    }
  }

  override async stat(path: string): Promise<FileInfo> {
    await this.turn();
    const full = this.full(path, true);
    let st;
    try {
      st = statSync(full, { throwIfNoEntry: false }); // a missing entry is common here: no exception for it
    } catch (err) {
      return statFailure(path, err);
    }
    return st ? fileInfo(path, st) : missingStat(path);
  }

  override async list(path: string): Promise<string[]> {
    await this.turn();
    const full = this.full(path, true);
    let names: string[];
    try {
      names = readdirSync(full);
    } catch (err) {
      return listFailure(path, err);
    }
    sweepLeftovers(full, names);
    return childPaths(path, names);
  }

  override async delete(path: string): Promise<void> {
    const full = this.full(path);
    let entries: Dirent[];
    try {
      entries = readdirSync(full, { withFileTypes: true });
    } catch (err) {
      if (errCode(err) !== 'ENOTDIR') {
        if (isENOENT(err)) throw new PathNotFoundError(NAME, path);
        throw err;
      }
      // A file, or a path below one.
      try {
        await unlink(full);
        return;
      } catch (err) {
        if (isENOENT(err)) throw new PathNotFoundError(NAME, path);
        throw err;
      }
    }
    await removeEntries(full, entries);
  }
}

/** Remove what a directory holds, depth first, then the directory; what is already gone is fine. */
async function removeEntries(dir: string, entries: Dirent[]): Promise<void> {
  await Promise.all(
    entries.map(async (entry) => {
      const child = join(dir, entry.name);
      try {
        if (entry.isDirectory()) await removeEntries(child, readdirSync(child, { withFileTypes: true }));
        else await unlink(child);
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw err;
      }
    }),
  );
  try {
    await rmdir(dir);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw err;
  }
}
