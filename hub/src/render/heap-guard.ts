// A look at the heap while a bundle's documents are read. The render worker has a heap
// limit (render.workerMaxHeapBytes); a render that reaches it ends the worker, and with
// it the whole render: every bundle's new rendering waits for the next commit. Looking
// at the heap every few documents fails the bundle that is filling it instead, with its
// file and line, while there is still room for the others. What it cannot see (one
// document, or one program's output, too large by itself) still meets the worker's limit,
// which ends only the worker (worker-renderer.ts).
import { getHeapStatistics } from 'node:v8';
import { ValidationError } from '@flotilla/common';

/** Documents read between two looks at the heap. */
export const HEAP_CHECK_EVERY = 128;

/**
 * Share of the heap limit in use past which a bundle stops being read (after a full GC
 * where one can be asked for). Half: what the bundle has parsed by then still has to be
 * checked, stamped and rendered for its clusters, which takes about as much again.
 */
export const HEAP_GUARD_SHARE = 0.5;

const MiB = 1024 * 1024;

// After a full GC left the heap under the share, the next one waits until an eighth of
// the limit more is in use: live data past the share is seen at most that late, and a
// heap near the share with garbage does not pay for a full GC at every look.
let collectAbove = 0;

// The old generation's limit when known (the render worker's --max-old-space-size): V8's
// heap_size_limit adds the young generation to it (48 MiB on Node.js 20), which for a
// small limit is most of the figure.
let oldGenerationLimit: number | undefined;

/** Sets the heap limit the guard measures against (the render worker's, at its start). */
export function setHeapGuardLimit(bytes: number): void {
  oldGenerationLimit = bytes;
}

/**
 * One bundle's looks at the heap: throws ValidationError at file:line when the heap
 * holds more than HEAP_GUARD_SHARE of its limit. A bundle of fewer than HEAP_CHECK_EVERY
 * documents is never looked at: small bundles cannot fill the heap by themselves.
 * Garbage counts as used until a GC: with --expose-gc (the render worker has it) a full
 * GC decides; without (in-process renders), the bundle fails on what the heap holds.
 */
export class HeapGuard {
  private documents = 0;

  /** Counts a document; every HEAP_CHECK_EVERY documents, looks at the heap. */
  document(file: string, line: number): void {
    if (++this.documents % HEAP_CHECK_EVERY !== 0) return;
    const stats = getHeapStatistics();
    const used = stats.used_heap_size;
    const limit = oldGenerationLimit ?? stats.heap_size_limit;
    if (used <= Math.max(limit * HEAP_GUARD_SHARE, collectAbove)) return;
    const gc = (globalThis as { gc?: () => void }).gc;
    let held = used;
    if (gc) {
      gc();
      held = getHeapStatistics().used_heap_size;
      if (held <= limit * HEAP_GUARD_SHARE) {
        collectAbove = held + limit / 8;
        return;
      }
    }
    throw new ValidationError(
      `reading this bundle took the render worker's heap past half its limit (${Math.round(held / MiB)} of ${Math.round(limit / MiB)} MiB in use; render.workerMaxHeapBytes); reading stopped here`,
      { file, line },
    );
  }
}
