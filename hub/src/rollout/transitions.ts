// Guarded changes of a rollout under decision: every phase change goes through here, is
// checked against the tables in model.ts (a change they do not allow is a bug, thrown
// as such) and recorded as a Transition for history, alerts and metrics.
import { FlotillaError } from '@flotilla/common';
import type { Amount, RolloutStrategy, StagePolicy, TimeWindow } from '../render/types.js';
import type { Journal } from './journal.js';
import { CLUSTER_TRANSITIONS, ROLLOUT_TRANSITIONS } from './model.js';
import type { ClusterPhase, ClusterRun, Rollout, RolloutPhase, Transition } from './model.js';

/** A rollout being decided on: a copy of the saved one, and what changed so far. */
export interface Draft {
  rollout: Rollout;
  transitions: Transition[];
  nowMs: number;
  /** Names of the members per stage, sorted; dropped when membership changes. */
  members?: Map<number, string[]> | undefined;
  /** Clusters whose run this draft has copied (copy on write: the others are the saved ones). */
  owned: Set<string>;
  /** True once rollout.clusters is the draft's own copy (made on first write). */
  ownsClusters: boolean;
  /**
   * Set: the draft changes rollout.clusters in place (no copy), each change logged here
   * to be undone; the runs themselves are still copied before they change.
   */
  journal: Journal | undefined;
  /** Members per stage and phase (computed when first needed, then kept up to date). */
  counts: Map<number, PhaseCounts> | undefined;
  /** Clusters this decision may still admit or put back (Observer.slice). */
  moves: number;
}

/** How many members of a stage are in each phase. */
export type PhaseCounts = Record<ClusterPhase, number>;

// Members per stage and phase of a clusters record changed in place (with a journal),
// kept up to date by every change, undo and redo of it: a decision asks "any waiting?"
// or "all done?" without looking at every cluster.
const COUNTS = new WeakMap<Record<string, ClusterRun>, Map<number, PhaseCounts>>();

function countAll(clusters: Record<string, ClusterRun>): Map<number, PhaseCounts> {
  const m = new Map<number, PhaseCounts>();
  for (const name in clusters) bump(m, clusters[name] as ClusterRun, 1);
  return m;
}

function bump(m: Map<number, PhaseCounts>, run: ClusterRun, by: number): void {
  let c = m.get(run.stage);
  if (!c) {
    c = { Waiting: 0, Updating: 0, Healthy: 0, Failed: 0, RolledBack: 0, Skipped: 0 };
    m.set(run.stage, c);
  }
  c[run.phase] += by;
}

/** A record's run was replaced by undo or redo (before → after; undefined: none): counts follow. */
export function recountRun(clusters: object, before: unknown, after: unknown): void {
  const m = COUNTS.get(clusters as Record<string, ClusterRun>);
  if (!m) return;
  if (before) bump(m, before as ClusterRun, -1);
  if (after) bump(m, after as ClusterRun, 1);
}

function countsOf(d: Draft): Map<number, PhaseCounts> {
  if (d.counts) return d.counts;
  const clusters = d.rollout.clusters;
  let m = d.journal ? COUNTS.get(clusters) : undefined;
  if (!m) {
    m = countAll(clusters);
    if (d.journal) COUNTS.set(clusters, m);
  }
  d.counts = m;
  return m;
}

/** Members of a stage in a phase. */
export function stageCount(d: Draft, stage: number, phase: ClusterPhase): number {
  return countsOf(d).get(stage)?.[phase] ?? 0;
}

/** Stages with members, the last first. */
export function stagesDescending(d: Draft): number[] {
  return [...countsOf(d).keys()].sort((a, b) => b - a);
}

/** Members of a stage running the new revision (Updating, Healthy or Failed). */
export function stageAdmitted(d: Draft, stage: number): number {
  const c = countsOf(d).get(stage);
  return c ? c.Updating + c.Healthy + c.Failed : 0;
}

/** Members of a stage. */
export function stageSize(d: Draft, stage: number): number {
  const c = countsOf(d).get(stage);
  if (!c) return 0;
  return c.Waiting + c.Updating + c.Healthy + c.Failed + c.RolledBack + c.Skipped;
}

// Members per stage of a clusters record, kept while the record lives: membership changes
// only when clusters join or leave, so most decisions sort nothing.
const INDEX = new WeakMap<Record<string, ClusterRun>, Map<number, string[]>>();

/**
 * A copy of a rollout that decisions may change without touching the saved one; with a
 * journal, its clusters record is the saved one, changed in place through the journal.
 */
export function draftOf(r: Rollout, nowMs: number, journal?: Journal): Draft {
  return {
    rollout: { ...r, stages: r.stages.map((s) => ({ ...s })) },
    transitions: [],
    nowMs,
    members: INDEX.get(r.clusters),
    owned: new Set(),
    ownsClusters: journal !== undefined,
    journal,
    // Kept up to date by every change in place; without a journal, counted when needed.
    counts: journal ? COUNTS.get(r.clusters) : undefined,
    moves: Number.POSITIVE_INFINITY,
  };
}

/** Sets (or with undefined removes) a cluster's run in the draft's clusters record. */
export function putRun(d: Draft, name: string, run: ClusterRun | undefined): void {
  const clusters = ownClusters(d);
  if (d.counts) {
    const before = clusters[name];
    if (before) bump(d.counts, before, -1);
    if (run) bump(d.counts, run, 1);
  }
  if (d.journal) d.journal.setRecord(clusters, name, run);
  else if (run) clusters[name] = run;
  else delete clusters[name];
}

/** Membership or stages changed: the member index is computed again when next needed. */
export function reshaped(d: Draft): void {
  d.members = undefined;
  if (!d.journal) return;
  INDEX.delete(d.rollout.clusters);
  d.journal.reshaped.add(d.rollout.clusters);
}

/** Forgets the member index of a clusters record (its members changed by undo or redo). */
export function forgetIndex(clusters: object): void {
  INDEX.delete(clusters as Record<string, ClusterRun>);
}

/** The draft's rollout with its own clusters record (copied on first write). */
function ownClusters(d: Draft): Record<string, ClusterRun> {
  if (!d.ownsClusters) {
    const copy: Record<string, ClusterRun> = {};
    for (const name in d.rollout.clusters) copy[name] = d.rollout.clusters[name] as ClusterRun;
    d.rollout.clusters = copy;
    d.ownsClusters = true;
  }
  return d.rollout.clusters;
}

/** Changes an owned run's stage or phase, keeping the counts. */
export function changeRun(d: Draft, run: ClusterRun, change: (run: ClusterRun) => void): void {
  if (d.counts) bump(d.counts, run, -1);
  change(run);
  if (d.counts) bump(d.counts, run, 1);
}

/** The draft's own copy of a cluster's run, made on first write. */
export function ownRun(d: Draft, name: string): ClusterRun | undefined {
  const c = d.rollout.clusters[name];
  if (!c || d.owned.has(name)) return c;
  const copy: ClusterRun = {
    stage: c.stage,
    phase: c.phase,
    sinceMs: c.sinceMs,
    deadlineFromMs: c.deadlineFromMs,
    reason: c.reason,
  };
  putRun(d, name, copy);
  d.owned.add(name);
  return copy;
}

/** Keeps the draft's member index for the next decision over the same clusters. */
export function keepIndex(d: Draft): void {
  if (d.members) INDEX.set(d.rollout.clusters, d.members);
}

/** Moves the rollout to `to`; throws INTERNAL when the table does not allow it. */
export function setPhase(d: Draft, to: RolloutPhase, message: string): void {
  const r = d.rollout;
  if (r.phase === to) return;
  if (!ROLLOUT_TRANSITIONS[r.phase].includes(to))
    throw new FlotillaError('INTERNAL', `rollout ${r.id}: ${r.phase} cannot become ${to}`);
  d.transitions.push({ atMs: d.nowMs, cluster: '', stage: -1, from: r.phase, to, message });
  r.phase = to;
  r.reason = message;
  r.updatedMs = d.nowMs;
  if (to === 'Completed' || to === 'Superseded' || to === 'RolledBack' || to === 'Aborted')
    r.endedMs = d.nowMs;
  else r.endedMs = 0;
}

/** Moves a cluster to `to`; throws INTERNAL when the table does not allow it. */
export function setClusterPhase(d: Draft, name: string, to: ClusterPhase, reason: string): void {
  const seen = d.rollout.clusters[name];
  if (!seen || seen.phase === to) return;
  const c = ownRun(d, name) as ClusterRun;
  if (!CLUSTER_TRANSITIONS[c.phase].includes(to))
    throw new FlotillaError(
      'INTERNAL',
      `rollout ${d.rollout.id}: cluster ${name} ${c.phase} cannot become ${to}`,
    );
  d.transitions.push({
    atMs: d.nowMs,
    cluster: name,
    stage: c.stage,
    from: c.phase,
    to,
    message: reason,
  });
  changeRun(d, c, (run) => {
    run.phase = to;
  });
  c.sinceMs = d.nowMs;
  c.reason = reason;
  const r = d.rollout;
  if (to === 'Updating') {
    c.deadlineFromMs = d.nowMs;
    const deadline = d.nowMs + r.strategy.progressDeadlineMs;
    const known = r.nextDeadlineMs ?? 0;
    r.nextDeadlineMs = known < 0 ? deadline : Math.min(known, deadline);
  }
  r.updatedMs = d.nowMs;
}

/** Records a stage event (started, approved, completed) as a rollout transition. */
export function stageEvent(d: Draft, stage: number, to: string, message: string): void {
  d.transitions.push({ atMs: d.nowMs, cluster: '', stage, from: '', to, message });
  d.rollout.updatedMs = d.nowMs;
}

/** Names of the members of every stage, each sorted (decisions are deterministic). */
export function stageIndex(r: Rollout): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const [name, c] of Object.entries(r.clusters)) {
    let list = out.get(c.stage);
    if (!list) out.set(c.stage, (list = []));
    list.push(name);
  }
  for (const list of out.values()) list.sort();
  return out;
}

/** Names of the members of a stage of a draft, sorted (read their runs from the draft). */
export function membersOf(d: Draft, stage: number): readonly string[] {
  d.members ??= stageIndex(d.rollout);
  return d.members.get(stage) ?? [];
}

/** A member's current run in the draft. */
export function runOf(d: Draft, name: string): ClusterRun {
  return d.rollout.clusters[name] as ClusterRun;
}

/** Clusters of a stage that may update at once: at least one. */
export function concurrencyOf(a: Amount, size: number): number {
  if ('count' in a) return Math.max(1, a.count);
  return Math.max(1, Math.ceil((size * a.percent) / 100));
}

/** Failed clusters a stage tolerates. */
export function failureBudgetOf(a: Amount, size: number): number {
  if ('count' in a) return a.count;
  return Math.floor((size * a.percent) / 100);
}

/** True when nowMs is inside one of the windows (always, without windows). */
export function inWindow(windows: readonly TimeWindow[], nowMs: number): boolean {
  if (windows.length === 0) return true;
  const t = new Date(nowMs);
  const minute = t.getUTCHours() * 60 + t.getUTCMinutes();
  const day = t.getUTCDay();
  return windows.some(
    (w) => w.days.includes(day) && minute >= w.startMinute && minute < w.endMinute,
  );
}

/** The next time (ms) one of the windows opens after nowMs; undefined without windows. */
export function nextWindowOpen(windows: readonly TimeWindow[], nowMs: number): number | undefined {
  let best: number | undefined;
  const midnight = Date.UTC(
    new Date(nowMs).getUTCFullYear(),
    new Date(nowMs).getUTCMonth(),
    new Date(nowMs).getUTCDate(),
  );
  for (let day = 0; day <= 7; day++) {
    const base = midnight + day * 86_400_000;
    const weekday = new Date(base).getUTCDay();
    for (const w of windows) {
      const at = base + w.startMinute * 60_000;
      if (w.days.includes(weekday) && at > nowMs && (best === undefined || at < best)) best = at;
    }
  }
  return best;
}

// Words that repeat in every cluster's reason (a stage's label, "admitted by" it, "healthy
// at" a revision) are made once and shared: a stage start of hundreds of clusters then
// allocates no string per cluster, and every run's reason refers to the same one.
const LABELS = new WeakMap<RolloutStrategy, { label: string[]; admitted: string[] }>();

function labelsOf(r: Rollout): { label: string[]; admitted: string[] } {
  let l = LABELS.get(r.strategy);
  if (!l) {
    const n = r.strategy.stages.length;
    const label = r.strategy.stages.map((s: StagePolicy, i) => `stage ${i + 1}/${n} (${s.name})`);
    l = { label, admitted: label.map((x) => `admitted by ${x}`) };
    LABELS.set(r.strategy, l);
  }
  return l;
}

/** The stage's name as messages show it: "stage 2/3 (prod)". */
export function stageLabel(r: Rollout, stage: number): string {
  return labelsOf(r).label[stage] ?? `stage ${stage + 1}/${r.strategy.stages.length} (?)`;
}

/** "admitted by stage 2/3 (prod)": the reason of a cluster its stage admits (shared). */
export function admittedBy(r: Rollout, stage: number): string {
  return labelsOf(r).admitted[stage] ?? `admitted by ${stageLabel(r, stage)}`;
}

// A few recent revisions' "healthy at <rev>" (bounded: revisions only ever move on).
const HEALTHY_AT = new Map<string, string>();

/** "healthy at 1a2b3c4d5e6f": the reason of a cluster healthy at the revision (shared). */
export function healthyAt(revision: string): string {
  let s = HEALTHY_AT.get(revision);
  if (s === undefined) {
    if (HEALTHY_AT.size >= 64) HEALTHY_AT.clear();
    s = `healthy at ${revision.slice(0, 12)}`;
    HEALTHY_AT.set(revision, s);
  }
  return s;
}
