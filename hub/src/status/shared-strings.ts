// Digests, revisions and bundle names repeat on every cluster and in every event, and
// JSON.parse makes a new copy of each. Status records and history entries keep one shared
// copy per distinct value instead: at 1,000 clusters the records alone held ~1.2 KiB per
// cluster of copies of the same few digests (docs/benchmarks.md, by constructor).

/** Distinct strings kept at most (100,000); the pool starts over when full. */
export const SHARED_STRINGS_MAX = 100_000;
/** Longer strings are not shared (256 characters: names and tokens fit, EVENT_LIMITS): texts rarely repeat. */
const SHARED_MAX_CHARS = 256;

const pool = new Map<string, string>();

/** The one shared copy of s (s itself the first time, or when it is too long to share). */
export function shared(s: string): string {
  if (s.length === 0 || s.length > SHARED_MAX_CHARS) return s;
  const known = pool.get(s);
  if (known !== undefined) return known;
  if (pool.size >= SHARED_STRINGS_MAX) pool.clear();
  pool.set(s, s);
  return s;
}
