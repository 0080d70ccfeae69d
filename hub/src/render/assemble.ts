// One cluster's bundles put together: no object may come from two bundles, because two
// owners would fight over it on every apply.
import type { RenderedBundle } from './bundle.js';
import type { RenderError } from './types.js';

/** A bundle that should be on a cluster: its fresh rendering and/or the previous one. */
export interface Candidate {
  bundle: string;
  /** This revision's rendering; undefined when it failed or the bundle is paused. */
  fresh: RenderedBundle | undefined;
  /** What this renderer last produced for the bundle on this cluster. */
  previous: RenderedBundle | undefined;
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
 */
export function assembleCluster(cluster: string, candidates: readonly Candidate[]): Assembly {
  const errors: RenderError[] = [];
  const held = new Set<string>();
  const active = new Map<string, { r: RenderedBundle; fresh: boolean }>();
  for (const c of [...candidates].sort((a, b) => cmp(a.bundle, b.bundle))) {
    if (!c.fresh) held.add(c.bundle);
    const r = c.fresh ?? c.previous;
    if (r) active.set(c.bundle, { r, fresh: c.fresh !== undefined });
  }
  const reported = new Set<string>();
  for (;;) {
    const bad = findConflicts(cluster, active, reported, errors);
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

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
