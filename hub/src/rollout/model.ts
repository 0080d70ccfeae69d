// The rollout model: one rollout per bundle and new revision, its phase, its stages and
// the phase of every cluster it updates. Phases are string unions with the transitions
// each one allows written down here (machine.ts guards every change with them). The
// shapes are plain JSON: they are what is saved in JetStream KV (store.ts) and what the
// API returns (view.ts), so fields are only ever added.
import type { RolloutStrategy } from '../render/types.js';

/** Phases of a rollout. */
export type RolloutPhase =
  | 'Progressing'
  | 'AwaitingApproval'
  | 'Paused'
  | 'Halted'
  | 'RolledBack'
  | 'Completed'
  | 'Superseded'
  | 'Aborted';

/** Every rollout phase, in display order. */
export const ROLLOUT_PHASES: readonly RolloutPhase[] = [
  'Progressing',
  'AwaitingApproval',
  'Paused',
  'Halted',
  'RolledBack',
  'Completed',
  'Superseded',
  'Aborted',
];

/**
 * What each phase may become. Halted is not final: `retry` or `abort` moves it on.
 * RolledBack and Aborted may be retried; Completed and Superseded are final.
 */
export const ROLLOUT_TRANSITIONS: Record<RolloutPhase, readonly RolloutPhase[]> = {
  Progressing: [
    'AwaitingApproval',
    'Paused',
    'Halted',
    'RolledBack',
    'Completed',
    'Superseded',
    'Aborted',
  ],
  AwaitingApproval: ['Progressing', 'Paused', 'Halted', 'RolledBack', 'Superseded', 'Aborted'],
  Paused: ['Progressing', 'AwaitingApproval', 'Halted', 'RolledBack', 'Superseded', 'Aborted'],
  Halted: ['Progressing', 'Superseded', 'Aborted'],
  RolledBack: ['Progressing', 'Superseded'],
  Completed: [],
  Superseded: [],
  Aborted: ['Progressing', 'Superseded'],
};

/** Phases in which the rollout still moves clusters forward or watches them. */
export const ACTIVE_PHASES: readonly RolloutPhase[] = ['Progressing', 'AwaitingApproval', 'Paused'];

/** Phases of one cluster in a rollout. */
export type ClusterPhase = 'Waiting' | 'Updating' | 'Healthy' | 'Failed' | 'RolledBack' | 'Skipped';

/** Every cluster phase, in display order. */
export const CLUSTER_PHASES: readonly ClusterPhase[] = [
  'Waiting',
  'Updating',
  'Healthy',
  'Failed',
  'RolledBack',
  'Skipped',
];

/** What each cluster phase may become. */
export const CLUSTER_TRANSITIONS: Record<ClusterPhase, readonly ClusterPhase[]> = {
  // Admitted by its stage; skipped while the cluster is paused.
  Waiting: ['Updating', 'Skipped'],
  // Healthy at the new revision, or not in time; rolled back with the rest.
  Updating: ['Healthy', 'Failed', 'RolledBack'],
  // Reported unhealthy (or went offline) at the new revision: watched again.
  Healthy: ['Updating', 'RolledBack'],
  // Retry gives it a new deadline; rollback puts back what was healthy.
  Failed: ['Updating', 'RolledBack'],
  // A retry after a rollback starts it again.
  RolledBack: ['Waiting'],
  // Unpaused.
  Skipped: ['Waiting'],
};

/** Phases in which a cluster runs the rollout's new revision. */
export const ADMITTED: readonly ClusterPhase[] = ['Updating', 'Healthy', 'Failed'];

/** One cluster in a rollout. */
export interface ClusterRun {
  /** Index of its stage in the strategy. */
  stage: number;
  phase: ClusterPhase;
  /** When it entered the phase, ms since epoch. */
  sinceMs: number;
  /** Updating: when its progress deadline started. */
  deadlineFromMs: number;
  /** Why it is in this phase ("" when nothing to say). */
  reason: string;
}

/** One stage of a running rollout. */
export interface StageRun {
  /** When it started updating clusters; 0 before. */
  startedMs: number;
  /** Who approved it ("" when nobody did), and when. */
  approvedBy: string;
  approvedMs: number;
  /** Since when every cluster of the stage has been healthy together (the soak); 0 when not all are. */
  healthySinceMs: number;
  /** When it completed; 0 before. */
  completedMs: number;
}

/** A rollout of one bundle's new revision. */
export interface Rollout {
  /** "<bundle>@<revision 12>-<n>": unique per bundle. */
  id: string;
  bundle: string;
  /** The commit whose rendering is rolled out. */
  revision: string;
  phase: RolloutPhase;
  /** The phase `resume` returns to. */
  pausedFrom?: 'Progressing' | 'AwaitingApproval';
  /** Index of the current stage; strategy.stages.length once every stage completed. */
  stage: number;
  stages: StageRun[];
  strategy: RolloutStrategy;
  /** The clusters it updates, by name. */
  clusters: Record<string, ClusterRun>;
  /** Why it is in its phase: the halt or rollback reason, who paused or aborted it. */
  reason: string;
  startedMs: number;
  updatedMs: number;
  /** When it reached a final phase; 0 before. */
  endedMs: number;
  /**
   * The earliest progress deadline of an Updating cluster; -1 when none updates; absent
   * (older saved rollouts) means unknown: the next decision looks at every cluster.
   */
  nextDeadlineMs?: number;
  /**
   * The last decision stopped at its slice (Observer.slice): clusters are still to be
   * admitted (`admit`) or put back (`rollback`, the rollout already RolledBack or Aborted);
   * the next decision follows at once and goes on. Absent: nothing left over.
   */
  pending?: 'admit' | 'rollback';
}

/** One change of a rollout or of a cluster in it: what history, alerts and metrics see. */
export interface Transition {
  atMs: number;
  /** "" for the rollout itself. */
  cluster: string;
  /** Stage index; -1 when the change is not about a stage. */
  stage: number;
  from: string;
  to: string;
  message: string;
}

/** What the controller observes about a cluster of a running rollout, from fleet status. */
export interface ClusterObservation {
  /** The agent reported the bundle Ready at the rollout's new content. */
  healthy: boolean;
  /** It reported it not Ready at the new content, or the cluster is offline. */
  unhealthy: boolean;
  /** Why it is not healthy ("" when it is), for messages. */
  reason: string;
}

/** What decisions read about clusters: health (status) and whether they are paused (Git). */
export interface Observer {
  /** Fleet status about the cluster at the rollout's new rendering. */
  health(cluster: string): ClusterObservation;
  /** The cluster is paused (spec.paused): skipped while it waits. */
  paused(cluster: string): boolean;
  /**
   * The clusters whose fleet status changed since the last decision, or undefined for a
   * full pass (after a render, a restore or an action). Health is read only for those (and
   * at a deadline), so a tick costs what changed, not the size of the fleet.
   */
  scope(): ReadonlySet<string> | undefined;
  /**
   * Clusters one decision may admit or put back at most (default: no limit); the rest
   * follow in the next decisions (Rollout.pending), so a decision's cost is bounded.
   */
  slice?: number;
}
