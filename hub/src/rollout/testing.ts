// Fixtures of rollout tests: strategies, observations, and rollouts driven into a phase.
import type { RolloutStrategy, StagePolicy } from '../render/types.js';
import { newRollout, step } from './machine.js';
import type { RolloutEvent } from './machine.js';
import type { ClusterObservation, Observer, Rollout } from './model.js';

/** A stage with defaults like spec.rollout's. */
export function stage(name: string, over: Partial<StagePolicy> = {}): StagePolicy {
  return {
    name,
    maxConcurrent: { percent: 100 },
    maxFailures: { count: 0 },
    soakMs: 0,
    approval: false,
    windows: [],
    ...over,
  };
}

/** canary (1 cluster) → prod (approval required), deadline 60 s. */
export function twoStages(onFailure: 'halt' | 'rollback' = 'halt'): RolloutStrategy {
  return {
    stages: [stage('canary'), stage('prod', { approval: true })],
    progressDeadlineMs: 60_000,
    onFailure,
  };
}

/** Observations a test sets per cluster; unknown clusters have reported nothing. */
export class Health implements Observer {
  private readonly map = new Map<string, ClusterObservation>();
  private readonly pausedSet = new Set<string>();
  readonly health = (c: string): ClusterObservation =>
    this.map.get(c) ?? { healthy: false, unhealthy: false, reason: 'no health reported' };
  readonly paused = (c: string): boolean => this.pausedSet.has(c);
  /** Undefined (a full pass) unless set with only(). */
  private scoped: ReadonlySet<string> | undefined;
  readonly scope = (): ReadonlySet<string> | undefined => this.scoped;
  /** Clusters a tick admits or puts back at most (Observer.slice); unset: all. */
  slice: number | undefined;

  /** Later ticks admit or put back at most n clusters each. */
  sliced(n: number): this {
    this.slice = n;
    return this;
  }

  /** Later ticks are told only these clusters' status changed (a scoped pass). */
  only(...clusters: string[]): this {
    this.scoped = new Set(clusters);
    return this;
  }

  healthy(...clusters: string[]): this {
    for (const c of clusters) this.map.set(c, { healthy: true, unhealthy: false, reason: '' });
    return this;
  }

  unhealthy(reason: string, ...clusters: string[]): this {
    for (const c of clusters) this.map.set(c, { healthy: false, unhealthy: true, reason });
    return this;
  }

  pause(...clusters: string[]): this {
    for (const c of clusters) this.pausedSet.add(c);
    return this;
  }

  unknown(...clusters: string[]): this {
    for (const c of clusters) {
      this.map.delete(c);
      this.pausedSet.delete(c);
    }
    return this;
  }
}

/** One join event of waiting clusters in a stage. */
export function joinWaiting(stage: number, ...clusters: string[]): RolloutEvent {
  return {
    type: 'join',
    clusters: clusters.map((cluster) => ({ cluster, stage, phase: 'Waiting', reason: 'waits' })),
  };
}

/** Applies events in order at nowMs; returns the last rollout. */
export function run(
  r: Rollout,
  events: readonly RolloutEvent[],
  nowMs: number,
  health: Health = new Health(),
): Rollout {
  let out = r;
  for (const ev of events) out = step(out, ev, nowMs, health).rollout;
  return out;
}

/** A fresh rollout of rev "abc…" with canary-1 in stage 0 and prod-1, prod-2 in stage 1. */
export function fresh(strategy: RolloutStrategy = twoStages(), nowMs = 1_000): Rollout {
  const r = newRollout('web@abcdef123456-1', 'web', 'abcdef1234567890', strategy, nowMs);
  return run(r, [joinWaiting(0, 'canary-1'), joinWaiting(1, 'prod-1', 'prod-2')], nowMs);
}
