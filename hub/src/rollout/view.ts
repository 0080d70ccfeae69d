// Rollouts as users see them (HTTP API, gRPC, CLI, web page): stages with clusters per
// phase, soak remaining, the halt reason; and the one-line reason a held cluster shows.
import type { TimeWindow } from '../render/types.js';
import type { BundleState } from './bundle-state.js';
import { CLUSTER_PHASES } from './model.js';
import type { ClusterPhase, Rollout, RolloutPhase } from './model.js';
import { concurrencyOf, failureBudgetOf, inWindow, stageIndex, stageLabel } from './transitions.js';

/** What a stage is doing. */
export type StageState = 'Pending' | 'AwaitingApproval' | 'Progressing' | 'Soaking' | 'Completed';

/** One stage of a rollout. */
export interface RolloutStageView {
  index: number;
  name: string;
  /** The stage of targeted clusters no declared stage selects. */
  implicit: boolean;
  state: StageState;
  clusters: number;
  phases: Record<ClusterPhase, number>;
  /** Clusters updating at once, and failures tolerated, for this stage's size. */
  maxConcurrent: number;
  maxFailures: number;
  soakMs: number;
  /** Soak time left while Soaking; 0 otherwise. */
  soakRemainingMs: number;
  approval: boolean;
  approvedBy: string;
  approvedAt: string | null;
  windows: TimeWindow[];
  startedAt: string | null;
  completedAt: string | null;
}

/** One cluster of a rollout. */
export interface RolloutClusterView {
  name: string;
  stage: string;
  phase: ClusterPhase;
  since: string;
  reason: string;
  /** Updating: when it counts as failed unless healthy. */
  deadline: string | null;
}

/** A rollout in full. */
export interface RolloutView {
  bundle: string;
  id: string;
  revision: string;
  phase: RolloutPhase;
  reason: string;
  /** Index of the current stage (stages.length once all completed). */
  stage: number;
  onFailure: 'halt' | 'rollback';
  progressDeadlineMs: number;
  counts: Record<ClusterPhase, number>;
  stages: RolloutStageView[];
  clusters: RolloutClusterView[];
  startedAt: string;
  updatedAt: string;
  endedAt: string | null;
}

/** A rollout in a list. */
export interface RolloutSummary {
  bundle: string;
  id: string;
  revision: string;
  phase: RolloutPhase;
  /** "2/3 (prod)", or "done". */
  stage: string;
  counts: Record<ClusterPhase, number>;
  reason: string;
  updatedAt: string;
}

const iso = (ms: number): string | null => (ms > 0 ? new Date(ms).toISOString() : null);

function zero(): Record<ClusterPhase, number> {
  return Object.fromEntries(CLUSTER_PHASES.map((p) => [p, 0])) as Record<ClusterPhase, number>;
}

function countPhases(r: Rollout, stage?: number): Record<ClusterPhase, number> {
  const out = zero();
  for (const c of Object.values(r.clusters))
    if (stage === undefined || c.stage === stage) out[c.phase]++;
  return out;
}

function stageState(r: Rollout, i: number, nowMs: number): StageState {
  const run = r.stages[i];
  if (!run) return 'Pending';
  if (run.completedMs > 0) return 'Completed';
  if (run.startedMs === 0)
    return r.stage === i && r.phase === 'AwaitingApproval' ? 'AwaitingApproval' : 'Pending';
  const soak = r.strategy.stages[i]?.soakMs ?? 0;
  return run.healthySinceMs > 0 && soak > 0 && nowMs - run.healthySinceMs < soak
    ? 'Soaking'
    : 'Progressing';
}

/** The full view of a rollout at nowMs. */
export function rolloutView(r: Rollout, nowMs: number): RolloutView {
  const index = stageIndex(r);
  const stages = r.strategy.stages.map((p, i): RolloutStageView => {
    const run = r.stages[i];
    const size = index.get(i)?.length ?? 0;
    const state = stageState(r, i, nowMs);
    return {
      index: i,
      name: p.name,
      implicit: p.implicit === true,
      state,
      clusters: size,
      phases: countPhases(r, i),
      maxConcurrent: concurrencyOf(p.maxConcurrent, size),
      maxFailures: failureBudgetOf(p.maxFailures, size),
      soakMs: p.soakMs,
      soakRemainingMs:
        state === 'Soaking' && run ? Math.max(0, run.healthySinceMs + p.soakMs - nowMs) : 0,
      approval: p.approval,
      approvedBy: run?.approvedBy ?? '',
      approvedAt: iso(run?.approvedMs ?? 0),
      windows: p.windows,
      startedAt: iso(run?.startedMs ?? 0),
      completedAt: iso(run?.completedMs ?? 0),
    };
  });
  const clusters = Object.entries(r.clusters)
    .sort(([a, x], [b, y]) => x.stage - y.stage || (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, c]) => ({
      name,
      stage: r.strategy.stages[c.stage]?.name ?? '',
      phase: c.phase,
      since: new Date(c.sinceMs).toISOString(),
      reason: c.reason,
      deadline:
        c.phase === 'Updating' ? iso(c.deadlineFromMs + r.strategy.progressDeadlineMs) : null,
    }));
  return {
    bundle: r.bundle,
    id: r.id,
    revision: r.revision,
    phase: r.phase,
    reason: r.reason,
    stage: r.stage,
    onFailure: r.strategy.onFailure,
    progressDeadlineMs: r.strategy.progressDeadlineMs,
    counts: countPhases(r),
    stages,
    clusters,
    startedAt: new Date(r.startedMs).toISOString(),
    updatedAt: new Date(r.updatedMs).toISOString(),
    endedAt: iso(r.endedMs),
  };
}

/** A rollout as a list shows it. */
export function rolloutSummary(r: Rollout): RolloutSummary {
  const n = r.strategy.stages.length;
  return {
    bundle: r.bundle,
    id: r.id,
    revision: r.revision,
    phase: r.phase,
    stage:
      r.stage >= n ? 'done' : `${r.stage + 1}/${n} (${r.strategy.stages[r.stage]?.name ?? ''})`,
    counts: countPhases(r),
    reason: r.reason,
    updatedAt: new Date(r.updatedMs).toISOString(),
  };
}

/**
 * Why a cluster does not get its head rendering of a bundle: "held by rollout <id>: …",
 * naming what it waits for (its stage, an approval, a free slot, a window) or why it was
 * stopped (halted, rolled back, aborted, paused).
 */
export function holdReason(s: BundleState, cluster: string, nowMs = Date.now()): string {
  const r = s.rollout;
  if (!r) return 'held: no rollout of this bundle yet';
  const head = `held by rollout ${r.id}`;
  const c = r.clusters[cluster];
  if (r.phase === 'Halted' || r.phase === 'RolledBack' || r.phase === 'Aborted')
    return `${head}: ${r.reason}`;
  if (r.phase === 'Paused') return `${head}: ${r.reason}`;
  if (!c) return `${head} (${r.phase}): ${r.reason}`;
  if (c.phase === 'Skipped') return `${head}: cluster is paused`;
  if (c.phase === 'RolledBack') return `${head}: ${c.reason}`;
  if (c.phase !== 'Waiting') return `${head}: ${c.phase}`;
  if (c.stage > r.stage)
    return `${head}: waits for ${stageLabel(r, c.stage)}; ${stageLabel(r, r.stage)} runs`;
  if (r.phase === 'AwaitingApproval')
    return `${head}: ${stageLabel(r, c.stage)} waits for approval`;
  const policy = r.strategy.stages[c.stage];
  if (policy && !inWindow(policy.windows, nowMs))
    return `${head}: outside the time windows of ${stageLabel(r, c.stage)}`;
  return `${head}: waits for a free slot in ${stageLabel(r, c.stage)}`;
}
