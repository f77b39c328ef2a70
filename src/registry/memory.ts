/**
 * Keeps the process's memory flat while bodies stream through it. Every chunk a socket
 * delivers is a fresh Buffer; dead ones are freed only when V8 next collects, which its
 * heuristics delay until tens of MiB of external memory pile up. A young-generation
 * collection every few MiB of streamed bytes costs well under a millisecond and returns them.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let collect: Collect | null | undefined;
let sinceLast = 0;
const EVERY_BYTES = 2 * 1024 * 1024;

function collector(): Collect | null {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as Collect;
    } catch {
      collect = null; // not available: memory is then bounded by V8's own heuristics
    }
  }
  return collect;
}

/** Note `bytes` streamed through the process; now and then, collect the young generation. */
export function streamed(bytes: number): void {
  sinceLast += bytes;
  if (sinceLast < EVERY_BYTES) return;
  sinceLast = 0;
  collector()?.({ type: 'minor' });
}
