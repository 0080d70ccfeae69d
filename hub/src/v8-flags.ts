// The V8 settings the hub process runs with, applied by the process itself so they hold
// however the hub is launched (`flotilla hub`, the container image, a test). Why, measured
// with hub/dist/bench/status-bench.js (1,000 clusters × 20 bundles, 100,000 events):
// - Node 24's V8 grows the young generation to 32 MiB per semi-space under the ingest's
//   allocation rate, and keeps the pages it frees in a pool that only its memory reducer
//   returns, seconds later. With a 40 MiB live heap the hub sat at 365–419 MiB RSS.
// - V8 lets the old generation grow up to 4× the live heap between full collections
//   (215 MiB committed for 47 MiB live in the trace).
// On Node 22 and later (V8 12+) the young generation is kept at its initial size (the growth
// factor is read whenever V8 considers growing it, so setting it at start holds;
// `--max-semi-space-size` is read only when the isolate is created, so it cannot be set
// here); everywhere the old generation may grow to twice the live heap. Node 20's V8 caps
// the young generation at 16 MiB and pools nothing: it met the target without the young-
// generation flag, and with it the big list queries' p99 rose from ~33 to 41–51 ms.
// Node 24 with both flags: 216–238 MiB RSS, p99 ~34 ms (it was 21–27 ms), ingest unchanged.
import { setFlagsFromString } from 'node:v8';

const V8_MAJOR = Number(process.versions.v8.split('.')[0]);

/** The V8 flags the hub sets on itself at start, for this process's V8. */
export const HUB_V8_FLAGS: readonly string[] = [
  ...(V8_MAJOR >= 12 ? ['--semi-space-growth-factor=1'] : []),
  '--heap-growing-percent=100',
];

let applied = false;

/**
 * Applies HUB_V8_FLAGS to this process; call it first thing, before the heap grows.
 * Idempotent. FLOTILLA_HUB_V8_FLAGS=off leaves V8 as started.
 */
export function applyHubV8Flags(env: NodeJS.ProcessEnv = process.env): boolean {
  if (applied) return true;
  if (env.FLOTILLA_HUB_V8_FLAGS === 'off') return false;
  for (const flag of HUB_V8_FLAGS) setFlagsFromString(flag);
  applied = true;
  return true;
}
