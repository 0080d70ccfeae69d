// One bundle's decision: the fleet head (what the newest commit renders for each
// cluster) meets the bundle's saved state. A changed rendering starts a new rollout
// (superseding a running one), clusters newly targeted join the current one, clusters no
// longer targeted leave it, and a tick moves it on. Then each cluster's renderings follow
// its phase: admitted clusters are sent the new rendering, healthy ones make it their
// stable one, rolled back ones are sent their stable one again. Pure.
import type { RolloutPlan } from '../render/types.js';
import { SlotWriter, copyState } from './bundle-state.js';
import type { BundleState, ClusterSlot, HistoryRecord } from './bundle-state.js';
import type { Journal } from './journal.js';
import { RolloutConflictError, newRollout, step } from './machine.js';
import { nextWakeMs } from './tick.js';
import type { JoinSpec, RolloutAction, RolloutEvent } from './machine.js';
import type { ClusterObservation, Observer, Rollout, Transition } from './model.js';

/** What the newest render says about one bundle. */
export interface BundleHead {
  bundle: string;
  /** The commit of the head states. */
  revision: string;
  /** Head rendering digest per cluster whose head state has the bundle. */
  digests: ReadonlyMap<string, string>;
  /** Clusters whose head state holds the bundle back (it failed to render, or is paused): left as they are. */
  held: ReadonlySet<string>;
  /** undefined when bundle.yaml was not read at this revision: the last strategy holds. */
  plan: RolloutPlan | undefined;
}

/** What a decision reads from outside. */
export interface AdvanceContext {
  nowMs: number;
  /** The rendering a cluster the bundle has no slot for runs now (its baseline); undefined: none. */
  baseline(cluster: string): string | undefined;
  /** Fleet status about a cluster, judged against the rendering `to`. */
  observe(cluster: string, to: string | undefined): ClusterObservation;
  /** The cluster is paused (spec.paused). */
  paused(cluster: string): boolean;
  /** Clusters whose fleet status changed since the last decision; undefined: all (Observer.scope). */
  scope(): ReadonlySet<string> | undefined;
  /** Clusters a tick may admit or put back at most (Observer.slice); default: no limit. */
  slice?: number;
  /**
   * Set: the decision changes prev's slots and its rollout's clusters in place, each change
   * logged to be undone (journal.ts); unset: prev is never changed.
   */
  journal?: Journal;
}

/** The outcome of one bundle's decision. */
export interface Advance {
  /** The new state; undefined when the bundle no longer has a strategy (forget it). */
  state: BundleState | undefined;
  /** True when it differs from the saved state (it must be saved before it is acted on). */
  changed: boolean;
  transitions: HistoryRecord[];
  wakeMs: number | undefined;
}

/**
 * Decides on one bundle; `head` undefined means only time passed or status changed; an
 * action (approve, pause, …) is applied first and throws RolloutConflictError when the
 * rollout's phase does not accept it.
 */
export function advanceBundle(
  prev: BundleState | undefined,
  head: BundleHead | undefined,
  ctx: AdvanceContext,
  action?: { type: RolloutAction; by: string },
): Advance {
  if (head?.plan && !head.plan.strategy) return dropStrategy(prev, head, ctx.nowMs);
  const strategy = head?.plan?.strategy ?? prev?.strategy;
  if (!strategy) return { state: prev, changed: false, transitions: [], wakeMs: undefined };
  // Most bundles, most of the time: nothing new and nothing that time or health can move.
  if (prev && !head && !action && quiet(prev.rollout))
    return { state: prev, changed: false, transitions: [], wakeMs: undefined };
  const s: BundleState = prev
    ? copyState(prev, ctx.journal)
    : {
        bundle: head?.bundle ?? '',
        strategy,
        slots: new Map(),
        revisionOf: new Map(),
        rollout: undefined,
        seq: 0,
        hseq: 0,
        outbox: [],
      };
  s.strategy = strategy;
  let changed = prev === undefined;
  const records: HistoryRecord[] = [];
  const record = (r: Rollout, ts: readonly Transition[]): void => {
    for (const t of ts) records.push(historyRecord(t, r, s));
  };
  let rollout = s.rollout;
  const apply = (ev: RolloutEvent): void => {
    if (!rollout) return;
    const res = step(
      rollout,
      ev,
      ctx.nowMs,
      {
        health: (c) => ctx.observe(c, s.slots.get(c)?.to),
        paused: (c) => ctx.paused(c),
        scope: () => ctx.scope(),
        ...(ctx.slice !== undefined ? { slice: ctx.slice } : {}),
      },
      ctx.journal,
    );
    rollout = res.rollout;
    record(rollout, res.transitions);
  };
  const slots = new SlotWriter(s, ctx.journal);
  // A rollback left over by a sliced decision is completed before a new head or an action
  // (not sliced: rare), and the slots follow, as if it had been done in one decision.
  if ((head || action) && rollout?.pending === 'rollback') {
    const unsliced = rollout;
    const res = step(unsliced, { type: 'tick' }, ctx.nowMs, NO_NEWS, ctx.journal);
    rollout = res.rollout;
    record(rollout, res.transitions);
    s.rollout = rollout;
    followPhases(s, slots, new Set(res.transitions.map((t) => t.cluster)));
  }
  if (head) {
    const r = followHead(s, slots, head, ctx, apply, rollout);
    if (r.started) {
      rollout = r.started;
      record(rollout, r.startTransitions);
    }
    changed ||= r.changed;
  }
  if (action) {
    if (!rollout)
      throw new RolloutConflictError(`bundle ${s.bundle} has no rollout to ${action.type}`);
    apply(action);
  }
  apply({ type: 'tick' });
  s.rollout = rollout;
  // Not `||=`: the slots must follow the phases whatever else changed. Only clusters with a
  // transition in this decision can have moved: slots followed every earlier one.
  const touched = new Set<string>();
  for (const r of records) if (r.cluster) touched.add(r.cluster);
  if (followPhases(s, slots, touched)) changed = true;
  changed ||= rollout?.updatedMs !== prev?.rollout?.updatedMs || rollout?.id !== prev?.rollout?.id;
  if (head) pruneRevisions(s);
  return {
    state: s,
    changed: changed || records.length > 0,
    transitions: records,
    wakeMs: rollout ? nextWakeMs(rollout, ctx.nowMs) : undefined,
  };
}

// A rollout no tick can change: ended, or completed with no late joiner to bring along.
function quiet(r: Rollout | undefined): boolean {
  if (r?.pending !== undefined) return false;
  if (!r || r.phase === 'Superseded' || r.phase === 'RolledBack' || r.phase === 'Aborted')
    return true;
  if (r.phase !== 'Completed') return false;
  // for-in, not Object.values: asked of every completed bundle at every decision.
  for (const name in r.clusters) {
    const phase = (r.clusters[name] as { phase: string }).phase;
    if (phase === 'Waiting' || phase === 'Updating') return false;
  }
  return true;
}

const NO_NEWS: Observer = {
  health: () => ({ healthy: false, unhealthy: false, reason: '' }),
  paused: () => false,
  scope: () => new Set<string>(),
};

// Slots follow the head: leavers go, joiners get a baseline slot, and a rendering that
// changed for a cluster already in the bundle starts a new rollout of everything that
// differs from what clusters run or last ran healthy.
function followHead(
  s: BundleState,
  slots: SlotWriter,
  head: BundleHead,
  ctx: AdvanceContext,
  apply: (ev: RolloutEvent) => void,
  current: Rollout | undefined,
): { changed: boolean; started: Rollout | undefined; startTransitions: Transition[] } {
  let changed = false;
  const lastStage = s.strategy.stages.length - 1;
  const stageOf = (c: string, slot?: ClusterSlot): number =>
    Math.min(head.plan?.stageOf.get(c) ?? slot?.stage ?? lastStage, lastStage);
  for (const c of [...s.slots.keys()]) {
    if (head.digests.has(c) || head.held.has(c)) continue;
    slots.remove(c);
    changed = true;
    apply({ type: 'leave', cluster: c });
  }
  const joiners: string[] = [];
  let moved = false;
  for (const [c, d] of head.digests) {
    let slot = s.slots.get(c);
    if (!slot) {
      const base = ctx.baseline(c);
      slot = { cur: base, stable: base, to: undefined, stage: stageOf(c) };
      slots.add(c, slot);
      changed = true;
    }
    const stage = stageOf(c, slot);
    if (slot.stage !== stage) {
      slot = slots.writable(c) as ClusterSlot;
      slot.stage = stage;
      changed = true;
    }
    if (slot.to === undefined) joiners.push(c);
    else if (slot.to !== d) moved = true;
  }
  let differs = false;
  if (!moved && !current)
    for (const [c, d] of head.digests)
      if (s.slots.get(c)?.cur !== d) {
        differs = true;
        break;
      }
  if (moved || differs) {
    if (current) apply({ type: 'supersede', revision: head.revision });
    s.seq++;
    const r = newRollout(
      `${s.bundle}@${head.revision.slice(0, 12)}-${s.seq}`,
      s.bundle,
      head.revision,
      s.strategy,
      ctx.nowMs,
    );
    const startTransitions: Transition[] = [];
    const joins: JoinSpec[] = [];
    for (const [c, d] of head.digests) {
      const slot = slots.writable(c) as ClusterSlot;
      slot.to = d;
      if (!s.revisionOf.has(d)) s.revisionOf.set(d, head.revision);
      const j = joinOf(c, slot, d);
      if (j) joins.push(j);
    }
    const res = step(r, { type: 'join', clusters: joins, quiet: true }, ctx.nowMs, NO_NEWS);
    const updating = joins.filter((j) => j.phase === 'Updating').length;
    startTransitions.push({
      atMs: ctx.nowMs,
      cluster: '',
      stage: -1,
      from: '',
      to: 'Progressing',
      message: `${r.reason}: ${joins.length} cluster(s) to update${updating > 0 ? ` (${updating} already run it, watched from now)` : ''}`,
    });
    return { changed: true, started: res.rollout, startTransitions };
  }
  const joins: JoinSpec[] = [];
  for (const c of joiners) {
    const slot = slots.writable(c) as ClusterSlot;
    const d = head.digests.get(c) as string;
    slot.to = d;
    if (!s.revisionOf.has(d)) s.revisionOf.set(d, head.revision);
    const j = joinOf(c, slot, d);
    if (j) joins.push(j);
    changed = true;
  }
  if (joins.length > 0) apply({ type: 'join', clusters: joins });
  return { changed, started: undefined, startTransitions: [] };
}

// A cluster is in a rollout when the new rendering is not both what it runs and what
// last ran healthy there; it already runs it (from a superseded rollout) → watched now.
function joinOf(c: string, slot: ClusterSlot, d: string): JoinSpec | undefined {
  if (slot.cur === d && slot.stable === d) return undefined;
  const running = slot.cur === d;
  return {
    cluster: c,
    stage: slot.stage,
    phase: running ? 'Updating' : 'Waiting',
    reason: running
      ? 'already runs the new revision; not yet healthy there'
      : 'waits for its stage',
  };
}

// Each cluster's renderings follow its phase; returns true when a slot changed.
function followPhases(s: BundleState, slots: SlotWriter, touched: ReadonlySet<string>): boolean {
  let changed = false;
  const set = (c: string, key: 'cur' | 'stable', d: string | undefined): void => {
    if (s.slots.get(c)?.[key] === d) return;
    const slot = slots.writable(c) as ClusterSlot;
    slot[key] = d;
    changed = true;
  };
  const runs = s.rollout?.clusters ?? {};
  for (const c of touched) {
    const run = runs[c];
    const slot = s.slots.get(c);
    if (!slot || !run) continue;
    if (run.phase === 'Updating' || run.phase === 'Healthy' || run.phase === 'Failed')
      set(c, 'cur', slot.to);
    if (run.phase === 'Healthy') set(c, 'stable', slot.to);
    if (run.phase === 'RolledBack') set(c, 'cur', slot.stable);
  }
  return changed;
}

// A bundle whose spec.rollout was removed goes out at once like any other: a running
// rollout ends as superseded, and the state is forgotten.
function dropStrategy(prev: BundleState | undefined, head: BundleHead, nowMs: number): Advance {
  const r = prev?.rollout;
  if (!prev || !r || r.phase === 'Completed' || r.phase === 'Superseded')
    return { state: undefined, changed: prev !== undefined, transitions: [], wakeMs: undefined };
  const t: Transition = {
    atMs: nowMs,
    cluster: '',
    stage: -1,
    from: r.phase,
    to: 'Superseded',
    message: `spec.rollout removed at ${head.revision.slice(0, 12)}: deployed at once`,
  };
  return {
    state: undefined,
    changed: true,
    transitions: [historyRecord(t, r, copyState(prev))],
    wakeMs: undefined,
  };
}

// Numbered per bundle, so ids are unique and a re-sent record is de-duplicated.
function historyRecord(t: Transition, r: Rollout, s: BundleState): HistoryRecord {
  s.hseq++;
  // Field by field: an object spread here is many times slower, at thousands per tick.
  return {
    atMs: t.atMs,
    cluster: t.cluster,
    stage: t.stage,
    from: t.from,
    to: t.to,
    message: t.message,
    id: s.bundle + '.' + String(s.hseq),
    bundle: s.bundle,
    rollout: r.id,
    revision: r.revision,
  };
}

// Forgets revisions of renderings no slot refers to; stops looking once every one is found
// (a few renderings, shared by thousands of clusters: usually within the first slots).
function pruneRevisions(s: BundleState): void {
  const unused = new Set(s.revisionOf.keys());
  for (const slot of s.slots.values()) {
    if (unused.size === 0) return;
    if (slot.cur !== undefined) unused.delete(slot.cur);
    if (slot.stable !== undefined) unused.delete(slot.stable);
    if (slot.to !== undefined) unused.delete(slot.to);
  }
  for (const d of unused) s.revisionOf.delete(d);
}
