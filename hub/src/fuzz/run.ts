// Runs fuzz targets with fast-check, seeded, and reports per target: iterations, crashes
// (each shrunk to its smallest input) and time.
import fc from 'fast-check';
import type { FuzzTarget } from './targets.js';

/** What one target's run found. */
export interface FuzzResult {
  name: string;
  covers: string;
  iterations: number;
  /** The shrunk failing input and the error, when the target crashed. */
  crash?: { input: string; error: string; seed: number; path: string };
  ms: number;
}

/** Runs `iterations` inputs through a target from `seed`; stops at the first crash. */
export function runTarget(target: FuzzTarget<never>, iterations: number, seed: number): FuzzResult {
  const started = performance.now();
  const details = fc.check(
    fc.property(target.arbitrary, (input) => {
      target.check(input);
    }),
    { numRuns: iterations, seed },
  );
  const ms = performance.now() - started;
  const base = { name: target.name, covers: target.covers, iterations: details.numRuns, ms };
  if (!details.failed) return base;
  return {
    ...base,
    crash: {
      input: fc.stringify(details.counterexample?.[0]).slice(0, 2_000),
      error:
        details.errorInstance instanceof Error
          ? details.errorInstance.message
          : String(details.errorInstance),
      seed: details.seed,
      path: details.counterexamplePath ?? '',
    },
  };
}
