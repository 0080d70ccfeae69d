// Seeded randomness for the fleet simulator: every agent draws from its own generator,
// seeded by the run's seed and its name, so a run is reproducible whatever the number of
// processes the agents are spread over.
import { createHash } from 'node:crypto';
import { parseDuration } from '@flotilla/common';

/** A generator of uniform numbers in [0, 1). */
export type Rng = () => number;

/** mulberry32 seeded with a hash of seed and name: small, fast, good enough for load shapes. */
export function seededRng(seed: number, name: string): Rng {
  let a = createHash('sha256').update(`${seed}/${name}`).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Delay until the next event of a Poisson process of `perMinute` events per minute (Infinity for 0). */
export function poissonDelayMs(rng: Rng, perMinute: number): number {
  if (perMinute <= 0) return Infinity;
  return (-Math.log(1 - rng()) / perMinute) * 60_000;
}

/** A distribution of durations (ms). */
export interface Distribution {
  /** The text it was parsed from, for reports. */
  readonly text: string;
  sample(rng: Rng): number;
}

// z of the 99th percentile of the standard normal distribution.
const Z99 = 2.326_347_874;

/**
 * Parses a duration distribution:
 *   "20ms"                 always 20 ms
 *   "10ms..200ms"          uniform between the two
 *   "lognormal:50ms,500ms" log-normal with median 50 ms and 99th percentile 500 ms
 * Throws RangeError naming what is wrong.
 */
export function parseDistribution(text: string): Distribution {
  const t = text.trim();
  const log = /^lognormal:([^,]+),(.+)$/.exec(t);
  if (log) {
    const median = parseDuration(log[1] as string);
    const p99 = parseDuration(log[2] as string);
    if (median <= 0 || p99 < median)
      throw new RangeError(`"${text}": lognormal needs 0 < median ≤ p99`);
    const mu = Math.log(median);
    const sigma = Math.log(p99 / median) / Z99;
    return {
      text: t,
      sample: (rng) => {
        // Box-Muller; 1 - rng() is in (0, 1], so the log is finite.
        const z = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
        return Math.exp(mu + sigma * z);
      },
    };
  }
  const range = /^(.+)\.\.(.+)$/.exec(t);
  if (range) {
    const lo = parseDuration(range[1] as string);
    const hi = parseDuration(range[2] as string);
    if (hi < lo) throw new RangeError(`"${text}": the upper bound is below the lower one`);
    return { text: t, sample: (rng) => lo + (hi - lo) * rng() };
  }
  const fixed = parseDuration(t);
  return { text: t, sample: () => fixed };
}
