// Guarded changes of a rollout under decision: every phase change goes through here, is
// checked against the tables in model.ts (a change they do not allow is a bug, thrown
// as such) and recorded as a Transition for history, alerts and metrics.
import { FlotillaError } from '@flotilla/common';
import type { Amount, StagePolicy, TimeWindow } from '../render/types.js';
import { CLUSTER_TRANSITIONS, ROLLOUT_TRANSITIONS } from './model.js';
import type { ClusterPhase, ClusterRun, Rollout, RolloutPhase, Transition } from './model.js';

/** A rollout being decided on: a copy of the saved one, and what changed so far. */
export interface Draft {
  rollout: Rollout;
  transitions: Transition[];
  nowMs: number;
}

/** A copy of a rollout that decisions may change without touching the saved one. */
export function draftOf(r: Rollout, nowMs: number): Draft {
  const clusters: Record<string, ClusterRun> = {};
  for (const [name, c] of Object.entries(r.clusters)) clusters[name] = { ...c };
  return {
    rollout: { ...r, stages: r.stages.map((s) => ({ ...s })), clusters },
    transitions: [],
    nowMs,
  };
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
  const c = d.rollout.clusters[name];
  if (!c || c.phase === to) return;
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
  c.phase = to;
  c.sinceMs = d.nowMs;
  c.reason = reason;
  if (to === 'Updating') c.deadlineFromMs = d.nowMs;
  d.rollout.updatedMs = d.nowMs;
}

/** Records a stage event (started, approved, completed) as a rollout transition. */
export function stageEvent(d: Draft, stage: number, to: string, message: string): void {
  d.transitions.push({ atMs: d.nowMs, cluster: '', stage, from: '', to, message });
  d.rollout.updatedMs = d.nowMs;
}

/** Members of a stage, sorted by name (decisions are deterministic). */
export function membersOf(r: Rollout, stage: number): [string, ClusterRun][] {
  return Object.entries(r.clusters)
    .filter(([, c]) => c.stage === stage)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
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

/** The stage's name as messages show it: "stage 2/3 (prod)". */
export function stageLabel(r: Rollout, stage: number): string {
  const s: StagePolicy | undefined = r.strategy.stages[stage];
  return `stage ${stage + 1}/${r.strategy.stages.length} (${s?.name ?? '?'})`;
}
