// What the controller keeps per bundle with a rollout strategy, and saves in JetStream
// KV: for every cluster the bundle targets, the rendering it is sent now (`cur`), the
// last one that was healthy there (`stable`, what a rollback puts back) and the one its
// latest rollout moves it to (`to`), each by bundle digest; the latest rollout itself;
// and the transitions not yet written to the history stream. Renderings are kept by
// digest in their own bucket (renderings.ts), so a restarted hub can send a cluster a
// rendering of a commit it will never render again.
import type { RolloutStrategy } from '../render/types.js';
import type { Journal } from './journal.js';
import type { Rollout, Transition } from './model.js';

/** One cluster's renderings of a bundle, by digest; undefined: none (the bundle is not there). */
export interface ClusterSlot {
  cur: string | undefined;
  stable: string | undefined;
  to: string | undefined;
  /** Its stage in the bundle's strategy (kept for when a render has no plan). */
  stage: number;
}

/** The controller's state of one bundle. */
export interface BundleState {
  bundle: string;
  /** The last strategy read from bundle.yaml (kept while the bundle.yaml is broken). */
  strategy: RolloutStrategy;
  slots: Map<string, ClusterSlot>;
  /** Revision each referenced rendering was first rolled out at (for "serving <rev>"). */
  revisionOf: Map<string, string>;
  /** The latest rollout (active or ended); undefined before the first. */
  rollout: Rollout | undefined;
  /** Rollouts started so far (ids are "<bundle>@<rev>-<seq>"). */
  seq: number;
  /** History records made so far (their ids are "<bundle>.<hseq>"). */
  hseq: number;
  /** Transitions decided but not yet in the history stream (bounded: HISTORY_OUTBOX_MAX). */
  outbox: HistoryRecord[];
}

/** A transition as history keeps it. */
export interface HistoryRecord extends Transition {
  /** "<bundle>.<n>": unique, the history stream's message id (de-duplication). */
  id: string;
  bundle: string;
  rollout: string;
  revision: string;
}

/** Transitions kept for the history stream while it cannot be written (10,000); older ones are dropped. */
export const HISTORY_OUTBOX_MAX = 10_000;

/** The saved form: digests once in a table, clusters as [cur, stable, to, stage] indexes (-1: none). */
export interface SavedBundleState {
  v: 1;
  bundle: string;
  strategy: RolloutStrategy;
  renderings: [digest: string, revision: string][];
  clusters: Record<string, [cur: number, stable: number, to: number, stage: number]>;
  rollout: Rollout | null;
  seq: number;
  hseq: number;
  outbox: HistoryRecord[];
}

/** Every digest a bundle state refers to. */
export function referencedDigests(s: BundleState): Set<string> {
  const out = new Set<string>();
  for (const slot of s.slots.values())
    for (const d of [slot.cur, slot.stable, slot.to]) if (d !== undefined) out.add(d);
  return out;
}

/** The saved form of a bundle state. */
export function saveForm(s: BundleState): SavedBundleState {
  const index = new Map<string, number>();
  const renderings: [string, string][] = [];
  const ix = (d: string | undefined): number => {
    if (d === undefined) return -1;
    let i = index.get(d);
    if (i === undefined) {
      i = renderings.length;
      index.set(d, i);
      renderings.push([d, s.revisionOf.get(d) ?? '']);
    }
    return i;
  };
  const clusters: SavedBundleState['clusters'] = {};
  for (const [name, slot] of [...s.slots].sort(([a], [b]) => (a < b ? -1 : 1)))
    clusters[name] = [ix(slot.cur), ix(slot.stable), ix(slot.to), slot.stage];
  return {
    v: 1,
    bundle: s.bundle,
    strategy: s.strategy,
    renderings,
    clusters,
    rollout: s.rollout ?? null,
    seq: s.seq,
    hseq: s.hseq,
    outbox: s.outbox,
  };
}

/** A bundle state from its saved form. */
export function loadForm(f: SavedBundleState): BundleState {
  const digest = (i: number): string | undefined => (i < 0 ? undefined : f.renderings[i]?.[0]);
  const slots = new Map<string, ClusterSlot>();
  for (const [name, [cur, stable, to, stage]] of Object.entries(f.clusters))
    slots.set(name, { cur: digest(cur), stable: digest(stable), to: digest(to), stage });
  return {
    bundle: f.bundle,
    strategy: f.strategy,
    slots,
    revisionOf: new Map(f.renderings),
    rollout: f.rollout ?? undefined,
    seq: f.seq,
    hseq: f.hseq ?? 0,
    outbox: f.outbox ?? [],
  };
}

/**
 * A copy that decisions may change: its maps are copies, its slots the saved ones until
 * SlotWriter copies them (the rollout and outbox are replaced, never changed). With a
 * journal, the slots map is the saved one, changed in place through the journal.
 */
export function copyState(s: BundleState, journal?: Journal): BundleState {
  return {
    ...s,
    slots: journal ? s.slots : new Map(s.slots),
    revisionOf: new Map(s.revisionOf),
  };
}

/** Copy on write of a copied state's slots: each slot is copied once, on first write. */
export class SlotWriter {
  private readonly mine = new WeakSet<ClusterSlot>();

  constructor(
    private readonly s: BundleState,
    private readonly journal?: Journal,
  ) {}

  /** A slot of this state that may be changed; undefined when the cluster has none. */
  writable(cluster: string): ClusterSlot | undefined {
    const slot = this.s.slots.get(cluster);
    if (!slot || this.mine.has(slot)) return slot;
    const copy: ClusterSlot = {
      cur: slot.cur,
      stable: slot.stable,
      to: slot.to,
      stage: slot.stage,
    };
    this.put(cluster, copy);
    this.mine.add(copy);
    return copy;
  }

  /** Adds a new slot (it is this state's own). */
  add(cluster: string, slot: ClusterSlot): void {
    this.put(cluster, slot);
    this.mine.add(slot);
  }

  /** Removes a cluster's slot. */
  remove(cluster: string): void {
    this.put(cluster, undefined);
  }

  private put(cluster: string, slot: ClusterSlot | undefined): void {
    if (this.journal) this.journal.setMap(this.s.slots, cluster, slot);
    else if (slot) this.s.slots.set(cluster, slot);
    else this.s.slots.delete(cluster);
  }
}
