// One cluster's bundles put together: no object may come from two bundles, because two
// owners would fight over it on every apply, and the objects of all bundles together
// stay within the cluster's limit.
import type { RenderedBundle } from './bundle.js';
import type { RenderError } from './types.js';

/** A bundle that should be on a cluster: its fresh rendering and/or the previous one. */
export interface Candidate {
  bundle: string;
  /** This revision's rendering; undefined when it failed or the bundle is paused. */
  fresh: RenderedBundle | undefined;
  /** What this renderer last produced for the bundle on this cluster. */
  previous: RenderedBundle | undefined;
  /** The bundle's bundle.yaml, for errors (unknown when it could not be read). */
  file?: string | undefined;
}

/** The bundles a cluster gets, sorted by name, plus what went wrong. */
export interface Assembly {
  bundles: RenderedBundle[];
  errors: RenderError[];
  /** Bundles whose fresh rendering is not used (previous kept, or left out). */
  held: Set<string>;
}

/**
 * Chooses each bundle's rendering. When two bundles produce the same object, both fall
 * back to their previous rendering (or are left out when they have none) and the
 * conflict is reported naming both: picking a winner would silently move ownership.
 * Bundles are then admitted in name order while their objects fit in maxObjects; one
 * that does not fit falls back the same way, so one huge bundle never holds the others.
 */
export function assembleCluster(
  cluster: string,
  candidates: readonly Candidate[],
  maxObjects = Infinity,
): Assembly {
  const errors: RenderError[] = [];
  const held = new Set<string>();
  const active = new Map<string, { r: RenderedBundle; fresh: boolean }>();
  for (const c of [...candidates].sort((a, b) => cmp(a.bundle, b.bundle))) {
    if (!c.fresh) held.add(c.bundle);
    const r = c.fresh ?? c.previous;
    if (r) active.set(c.bundle, { r, fresh: c.fresh !== undefined });
  }
  const reported = new Set<string>();
  const files = new Map(candidates.map((c) => [c.bundle, c.file]));
  for (;;) {
    let bad = findConflicts(cluster, active, reported, errors);
    if (bad.size === 0) bad = overLimit(cluster, active, maxObjects, files, reported, errors);
    if (bad.size === 0) break;
    for (const name of bad) {
      held.add(name);
      const prev = candidates.find((c) => c.bundle === name)?.previous;
      const cur = active.get(name);
      if (cur?.fresh && prev && prev !== cur.r) active.set(name, { r: prev, fresh: false });
      else active.delete(name);
    }
  }
  return { bundles: [...active.values()].map((a) => a.r), errors, held };
}

function findConflicts(
  cluster: string,
  active: ReadonlyMap<string, { r: RenderedBundle }>,
  reported: Set<string>,
  errors: RenderError[],
): Set<string> {
  const owner = new Map<string, string>();
  const bad = new Set<string>();
  for (const [name, { r }] of active) {
    for (const key of r.keys) {
      const other = owner.get(key);
      if (other === undefined) {
        owner.set(key, name);
        continue;
      }
      bad.add(other).add(name);
      const pair = `${other}\0${name}`;
      if (reported.has(pair)) continue;
      reported.add(pair);
      errors.push({
        cluster,
        bundle: name,
        conflictsWith: other,
        message: `object ${key} is produced by bundles "${other}" and "${name}" for cluster "${cluster}"; neither bundle is updated there until one of them drops it`,
      });
    }
  }
  return bad;
}

// Bundles (in name order) whose objects do not fit in what the earlier ones left.
function overLimit(
  cluster: string,
  active: ReadonlyMap<string, { r: RenderedBundle; fresh: boolean }>,
  maxObjects: number,
  files: ReadonlyMap<string, string | undefined>,
  reported: Set<string>,
  errors: RenderError[],
): Set<string> {
  const over = new Set<string>();
  let total = 0;
  for (const [name, { r, fresh }] of active) {
    const n = r.keys.length;
    if (total + n <= maxObjects) {
      total += n;
      continue;
    }
    over.add(name);
    const what = fresh ? 'its new rendering' : 'its previous rendering';
    const tag = `limit\0${name}\0${fresh}`;
    if (reported.has(tag)) continue;
    reported.add(tag);
    const file = files.get(name);
    errors.push({
      cluster,
      bundle: name,
      ...(file !== undefined ? { file } : {}),
      message: `${file !== undefined ? `${file}: ` : ''}${what} has ${n} objects, which would bring cluster "${cluster}" to ${total + n}, over render.maxClusterObjects (${maxObjects}); the bundle is held there`,
    });
  }
  return over;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
