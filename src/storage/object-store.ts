/** Pieces the object-store drivers (s3, azure) share: buffering writes into parts, shaping listings. */
import { PathNotFoundError, type FileInfo } from './driver.js';

/** Remove and return the first `n` bytes of `chunks` (which hold at least `n`), in one Buffer. */
export function takeFront(chunks: Buffer[], n: number): Buffer {
  if (chunks.length === 1 && chunks[0]!.length === n) return chunks.shift()!;
  const out = Buffer.allocUnsafe(n);
  let filled = 0;
  while (filled < n) {
    const head = chunks[0]!;
    const want = n - filled;
    if (head.length <= want) {
      head.copy(out, filled);
      filled += head.length;
      chunks.shift();
    } else {
      head.copy(out, filled, 0, want);
      chunks[0] = head.subarray(want);
      filled += want;
    }
  }
  return out;
}

/**
 * A directory listing from the objects found under a prefix: files, plus the virtual
 * directories their names imply, sorted; nothing under a path other than the root is a
 * missing path, as the driver contract says.
 */
export function listingOf(driver: string, path: string, base: string, files: Map<string, FileInfo>, dirs: Set<string>): FileInfo[] {
  const out: FileInfo[] = [...files.values()];
  for (const name of dirs) if (!files.has(name)) out.push({ path: `${base}/${name}`, size: 0, modTime: new Date(), isDir: true });
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (out.length === 0 && path !== '/') throw new PathNotFoundError(driver, path);
  return out;
}
