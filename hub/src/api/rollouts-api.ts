// Rollouts over the APIs: the HTTP routes (GET /api/v1/rollouts[/{bundle}[/history]],
// POST /api/v1/rollouts/{bundle}/{action}) and the wire form of the gRPC messages.
// Reads need what every read needs; actions need the administrator certificate or a
// token with the write scope (access.ts).
import { ValidationError } from '@flotilla/common';
import type { RolloutMessage, RolloutSummaryMessage } from '@flotilla/proto';
import { ROLLOUT_ACTIONS } from '../rollout/machine.js';
import type { RolloutAction } from '../rollout/machine.js';
import type { RolloutSummary, RolloutView } from '../rollout/view.js';

const ms = (iso: string | null): number => (iso ? Date.parse(iso) : 0);

/** An action name, checked. */
export function actionParam(text: string | undefined): RolloutAction {
  if (!ROLLOUT_ACTIONS.includes(text as RolloutAction))
    throw new ValidationError(
      `action: unknown rollout action "${text ?? ''}" (use ${ROLLOUT_ACTIONS.join(', ')})`,
    );
  return text as RolloutAction;
}

/** The wire form of a rollout in a list. */
export function toRolloutSummaryMessage(r: RolloutSummary): RolloutSummaryMessage {
  return { ...r, updatedMs: ms(r.updatedAt) };
}

/** The wire form of a rollout in full. */
export function toRolloutMessage(v: RolloutView): RolloutMessage {
  return {
    bundle: v.bundle,
    id: v.id,
    revision: v.revision,
    phase: v.phase,
    reason: v.reason,
    stage: v.stage,
    onFailure: v.onFailure,
    progressDeadlineMs: v.progressDeadlineMs,
    counts: v.counts,
    stages: v.stages.map((s) => ({
      index: s.index,
      name: s.name,
      implicit: s.implicit,
      state: s.state,
      clusters: s.clusters,
      phases: s.phases,
      maxConcurrent: s.maxConcurrent,
      maxFailures: s.maxFailures,
      soakMs: s.soakMs,
      soakRemainingMs: s.soakRemainingMs,
      approval: s.approval,
      approvedBy: s.approvedBy,
      approvedMs: ms(s.approvedAt),
      startedMs: ms(s.startedAt),
      completedMs: ms(s.completedAt),
    })),
    clusters: v.clusters.map((c) => ({
      name: c.name,
      stage: c.stage,
      phase: c.phase,
      sinceMs: ms(c.since),
      reason: c.reason,
      deadlineMs: ms(c.deadline),
    })),
    startedMs: ms(v.startedAt),
    updatedMs: ms(v.updatedAt),
    endedMs: ms(v.endedAt),
  };
}
