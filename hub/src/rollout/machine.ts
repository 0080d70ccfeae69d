// The rollout state machine: every event a rollout can receive — a tick (time passed or
// status changed), the actions a person takes (approve, pause, resume, abort, retry), a
// newer commit superseding it, and clusters joining or leaving its targets — and what
// each does in each phase. step() is pure: the saved rollout is never changed, a new
// one comes back with the transitions to record; an action a phase does not accept is
// rejected with the reason, and changes nothing.
import { FlotillaError } from '@flotilla/common';
import type { RolloutStrategy } from '../render/types.js';
import type {
  ClusterPhase,
  ClusterRun,
  Observer,
  Rollout,
  RolloutPhase,
  Transition,
} from './model.js';
import type { Journal } from './journal.js';
import { nextWakeMs, rollBack, tick } from './tick.js';
import {
  changeRun,
  draftOf,
  keepIndex,
  ownRun,
  putRun,
  reshaped,
  setClusterPhase,
  setPhase,
  stageEvent,
  stageLabel,
} from './transitions.js';
import type { Draft } from './transitions.js';

/** What a person may do to a rollout. */
export type RolloutAction = 'approve' | 'pause' | 'resume' | 'abort' | 'retry';

/** Every action, for usage texts and routes. */
export const ROLLOUT_ACTIONS: readonly RolloutAction[] = [
  'approve',
  'pause',
  'resume',
  'abort',
  'retry',
];

/** Everything that can happen to a rollout. */
export type RolloutEvent =
  | { type: 'tick' }
  | { type: RolloutAction; by: string }
  | { type: 'supersede'; revision: string }
  | {
      type: 'join';
      clusters: readonly JoinSpec[];
      /** The clusters a new rollout starts with: its start transition says how many, not each. */
      quiet?: boolean;
    }
  | { type: 'leave'; cluster: string };

/** A cluster joining a rollout: its stage, and whether it already runs the new rendering. */
export interface JoinSpec {
  cluster: string;
  stage: number;
  phase: 'Waiting' | 'Updating';
  reason: string;
}

/** The actions each phase accepts; any other is rejected (CONFLICT) with the reason. */
export const ACCEPTS: Record<RolloutPhase, readonly RolloutAction[]> = {
  Progressing: ['pause', 'abort'],
  AwaitingApproval: ['approve', 'pause', 'abort'],
  Paused: ['approve', 'resume', 'abort'],
  Halted: ['abort', 'retry'],
  RolledBack: ['retry'],
  Completed: [],
  Superseded: [],
  Aborted: ['retry'],
};

/** A rollout action the rollout's phase does not accept. */
export class RolloutConflictError extends FlotillaError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

/** What a step produced. */
export interface StepResult {
  rollout: Rollout;
  transitions: Transition[];
  /** When the rollout must be decided on again without news; undefined for never. */
  wakeMs: number | undefined;
}

/** A new rollout of `revision`, every stage still to run; clusters join with join events. */
export function newRollout(
  id: string,
  bundle: string,
  revision: string,
  strategy: RolloutStrategy,
  nowMs: number,
): Rollout {
  return {
    id,
    bundle,
    revision,
    phase: 'Progressing',
    stage: 0,
    stages: strategy.stages.map(() => ({
      startedMs: 0,
      approvedBy: '',
      approvedMs: 0,
      healthySinceMs: 0,
      completedMs: 0,
    })),
    strategy,
    clusters: {},
    reason: `started at ${revision.slice(0, 12)}`,
    startedMs: nowMs,
    updatedMs: nowMs,
    endedMs: 0,
    nextDeadlineMs: -1,
  };
}

/**
 * Applies one event at nowMs (with a journal, to r's clusters record in place: see
 * journal.ts; without, r is never changed). Actions are followed by a tick, so an approval starts its
 * stage at once; a rejected action throws RolloutConflictError. The tick admits or puts back
 * at most observe.slice clusters (the rest: Rollout.pending), as does an abort.
 */
export function step(
  r: Rollout,
  ev: RolloutEvent,
  nowMs: number,
  observe: Observer,
  journal?: Journal,
): StepResult {
  const d = draftOf(r, nowMs, journal);
  // Any other event sees a rollback left over by a sliced decision as complete.
  if (r.pending === 'rollback' && ev.type !== 'tick') tick(d, observe);
  d.moves = observe.slice ?? Number.POSITIVE_INFINITY;
  switch (ev.type) {
    case 'tick':
      tick(d, observe);
      break;
    case 'supersede':
      if (!isFinal(r.phase)) setPhase(d, 'Superseded', `superseded by ${ev.revision.slice(0, 12)}`);
      break;
    case 'join':
      for (const j of ev.clusters) join(d, j, ev.quiet === true);
      break;
    case 'leave':
      if (d.rollout.clusters[ev.cluster]) {
        putRun(d, ev.cluster, undefined);
        reshaped(d);
        d.transitions.push({
          atMs: nowMs,
          cluster: ev.cluster,
          stage: -1,
          from: r.clusters[ev.cluster]?.phase ?? '',
          to: 'Left',
          message: 'no longer targeted by the bundle',
        });
      }
      break;
    default:
      act(d, ev.type, ev.by);
      tick(d, observe);
  }
  keepIndex(d);
  return { rollout: d.rollout, transitions: d.transitions, wakeMs: nextWakeMs(d.rollout, nowMs) };
}

function isFinal(phase: RolloutPhase): boolean {
  return phase === 'Completed' || phase === 'Superseded';
}

// A cluster newly targeted mid-rollout is placed in its stage: it waits for the stage (or
// is updated at once when its stage already started); one that already runs the new
// revision without being healthy there yet is watched from now.
function join(d: Draft, ev: JoinSpec, quiet: boolean): void {
  const r = d.rollout;
  const existing = r.clusters[ev.cluster];
  if (existing) {
    if (existing.phase === 'Waiting' && existing.stage !== ev.stage) {
      changeRun(d, ownRun(d, ev.cluster) as ClusterRun, (run) => {
        run.stage = ev.stage;
      });
      reshaped(d);
    }
    return;
  }
  const run: ClusterRun = {
    stage: ev.stage,
    phase: ev.phase,
    sinceMs: d.nowMs,
    deadlineFromMs: d.nowMs,
    reason: ev.reason,
  };
  putRun(d, ev.cluster, run);
  d.owned.add(ev.cluster);
  reshaped(d);
  if (ev.phase === 'Updating') {
    const deadline = d.nowMs + r.strategy.progressDeadlineMs;
    const known = r.nextDeadlineMs ?? 0;
    r.nextDeadlineMs = known < 0 ? deadline : Math.min(known, deadline);
  }
  r.updatedMs = d.nowMs;
  if (quiet) return;
  d.transitions.push({
    atMs: d.nowMs,
    cluster: ev.cluster,
    stage: ev.stage,
    from: '',
    to: ev.phase,
    message: ev.reason,
  });
}

function act(d: Draft, action: RolloutAction, by: string): void {
  const r = d.rollout;
  if (!ACCEPTS[r.phase].includes(action)) throw new RolloutConflictError(refusal(r, action));
  const who = by || 'someone';
  switch (action) {
    case 'approve': {
      const run = r.stages[r.stage];
      const policy = r.strategy.stages[r.stage];
      if (!run || !policy?.approval || run.startedMs > 0 || run.approvedBy !== '')
        throw new RolloutConflictError(
          `rollout ${r.id} is ${r.phase}: no stage waits for approval`,
        );
      run.approvedBy = who;
      run.approvedMs = d.nowMs;
      stageEvent(d, r.stage, 'Approved', `${stageLabel(r, r.stage)} approved by ${who}`);
      if (r.phase === 'AwaitingApproval') setPhase(d, 'Progressing', `approved by ${who}`);
      else r.pausedFrom = 'Progressing';
      return;
    }
    case 'pause':
      r.pausedFrom = r.phase === 'AwaitingApproval' ? 'AwaitingApproval' : 'Progressing';
      setPhase(d, 'Paused', `paused by ${who}`);
      return;
    case 'resume':
      setPhase(d, r.pausedFrom ?? 'Progressing', `resumed by ${who}`);
      delete r.pausedFrom;
      return;
    case 'abort':
      rollBack(d, `aborted by ${who}`);
      setPhase(d, 'Aborted', `aborted by ${who}`);
      return;
    case 'retry':
      retry(d, who);
  }
}

// Halted: the failed clusters get a new deadline. Rolled back or aborted: the clusters
// put back wait again and the stages run again from the first (approvals already given
// for this revision stand).
function retry(d: Draft, who: string): void {
  const r = d.rollout;
  const restart = r.phase !== 'Halted';
  for (const [name, c] of Object.entries(r.clusters)) {
    const to: ClusterPhase | undefined =
      c.phase === 'Failed' && !restart
        ? 'Updating'
        : c.phase === 'RolledBack' && restart
          ? 'Waiting'
          : undefined;
    if (to) setClusterPhase(d, name, to, `retried by ${who}`);
  }
  if (restart) {
    r.stage = 0;
    for (const s of r.stages) {
      s.startedMs = 0;
      s.healthySinceMs = 0;
      s.completedMs = 0;
    }
  }
  setPhase(d, 'Progressing', `retried by ${who}`);
}

function refusal(r: Rollout, action: RolloutAction): string {
  const accepted = ACCEPTS[r.phase];
  const hint = accepted.length > 0 ? ` (it accepts ${accepted.join(', ')})` : '';
  return `rollout ${r.id} is ${r.phase}: cannot ${action}${hint}`;
}
