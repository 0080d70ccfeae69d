// One decision over a rollout from what fleet status says about its clusters: which
// clusters became healthy at the new revision or missed their deadline, whether a stage
// exceeded its failure budget (halt or roll back), which waiting clusters their stage
// admits now, and whether the current stage has soaked long enough for the next one.
// Pure: time and observations come in, the changed draft goes out.
import { ADMITTED } from './model.js';
import type { ClusterObservation, ClusterRun, Rollout } from './model.js';
import {
  concurrencyOf,
  failureBudgetOf,
  inWindow,
  membersOf,
  nextWindowOpen,
  setClusterPhase,
  setPhase,
  stageEvent,
  stageLabel,
} from './transitions.js';
import type { Draft } from './transitions.js';

/** Observations of the clusters a decision needs (the controller reads fleet status). */
export type Observe = (cluster: string) => ClusterObservation;

/** Decides on a rollout at d.nowMs; changes d. */
export function tick(d: Draft, observe: Observe): void {
  const r = d.rollout;
  if (r.phase === 'Superseded' || r.phase === 'RolledBack' || r.phase === 'Aborted') return;
  watchClusters(d, observe);
  if (r.phase === 'Halted') return;
  if (r.phase === 'Completed') {
    // A cluster that joins after the last stage gets the revision at once.
    for (const [name, c] of Object.entries(r.clusters))
      if (c.phase === 'Waiting')
        setClusterPhase(d, name, 'Updating', 'joined after the rollout completed');
    return;
  }
  if (checkFailures(d)) return;
  if (r.phase === 'Paused') return;
  advance(d);
}

// Health at the new revision moves clusters on: Updating → Healthy, or Failed once the
// deadline passed; a Healthy cluster that reports otherwise (or goes offline) is watched
// again with a new deadline. Paused clusters are skipped while they wait.
function watchClusters(d: Draft, observe: Observe): void {
  const r = d.rollout;
  const deadline = r.strategy.progressDeadlineMs;
  for (const [name, c] of Object.entries(r.clusters)) {
    // Failed stays failed until a retry; rolled back clusters are no longer watched.
    if (c.phase === 'Failed' || c.phase === 'RolledBack') continue;
    const o = observe(name);
    if (c.phase === 'Waiting' && o.paused) setClusterPhase(d, name, 'Skipped', 'cluster is paused');
    else if (c.phase === 'Skipped' && !o.paused)
      setClusterPhase(d, name, 'Waiting', 'cluster is no longer paused');
    else if (c.phase === 'Updating' && o.healthy)
      setClusterPhase(d, name, 'Healthy', `healthy at ${r.revision.slice(0, 12)}`);
    else if (c.phase === 'Updating' && d.nowMs - c.deadlineFromMs >= deadline)
      setClusterPhase(
        d,
        name,
        'Failed',
        `not healthy at ${r.revision.slice(0, 12)} within ${seconds(deadline)}: ${o.reason || 'no health reported'}`,
      );
    else if (c.phase === 'Healthy' && o.unhealthy)
      setClusterPhase(d, name, 'Updating', `was healthy, now ${o.reason}`);
  }
}

// A stage with more failed clusters than it tolerates stops the rollout: halted where it
// is, or every cluster that took the new revision goes back to what was healthy there.
function checkFailures(d: Draft): boolean {
  const r = d.rollout;
  for (let s = 0; s <= Math.min(r.stage, r.strategy.stages.length - 1); s++) {
    const members = membersOf(r, s);
    const failed = members.filter(([, c]) => c.phase === 'Failed');
    const budget = failureBudgetOf(
      r.strategy.stages[s]?.maxFailures ?? { count: 0 },
      members.length,
    );
    if (failed.length <= budget) continue;
    const [first, c] = failed[0] as [string, ClusterRun];
    const why = `${stageLabel(r, s)}: ${failed.length} of ${members.length} clusters failed (${budget} tolerated); ${first}: bundle ${r.bundle} ${c.reason}`;
    if (r.strategy.onFailure === 'rollback') {
      rollBack(d, `rolled back: ${why}`);
      setPhase(d, 'RolledBack', `rolled back: ${why}`);
    } else setPhase(d, 'Halted', `halted: ${why}`);
    return true;
  }
  return false;
}

/** Every cluster running the new revision goes back to what was healthy there. */
export function rollBack(d: Draft, reason: string): void {
  for (const [name, c] of Object.entries(d.rollout.clusters))
    if (ADMITTED.includes(c.phase)) setClusterPhase(d, name, 'RolledBack', reason);
}

// Starts stages in order (after approval where required), admits waiting clusters within
// each started stage's concurrency and time windows, and completes the current stage once
// its clusters have all been healthy together for its soak time.
function advance(d: Draft): void {
  const r = d.rollout;
  const n = r.strategy.stages.length;
  while (r.stage < n) {
    const s = r.stage;
    const run = r.stages[s];
    const policy = r.strategy.stages[s];
    if (!run || !policy) return;
    const members = membersOf(r, s);
    if (run.startedMs === 0) {
      if (members.length > 0 && policy.approval && run.approvedBy === '') {
        setPhase(d, 'AwaitingApproval', `${stageLabel(r, s)} waits for approval`);
        return;
      }
      run.startedMs = d.nowMs;
      r.updatedMs = d.nowMs;
      if (r.phase !== 'Progressing') setPhase(d, 'Progressing', `${stageLabel(r, s)} started`);
      stageEvent(d, s, 'StageStarted', `${stageLabel(r, s)} started: ${members.length} cluster(s)`);
    }
    for (let earlier = 0; earlier <= s; earlier++) admit(d, earlier);
    const done = members.every(
      ([, c]) => c.phase === 'Healthy' || c.phase === 'Failed' || c.phase === 'Skipped',
    );
    if (!done) {
      if (run.healthySinceMs !== 0) r.updatedMs = d.nowMs;
      run.healthySinceMs = 0;
      return;
    }
    if (run.healthySinceMs === 0) {
      run.healthySinceMs = d.nowMs;
      r.updatedMs = d.nowMs;
    }
    if (d.nowMs - run.healthySinceMs < policy.soakMs) return;
    run.completedMs = d.nowMs;
    stageEvent(d, s, 'StageCompleted', `${stageLabel(r, s)} completed`);
    r.stage = s + 1;
  }
  setPhase(d, 'Completed', `every stage completed at ${r.revision.slice(0, 12)}`);
}

function admit(d: Draft, s: number): void {
  const r = d.rollout;
  const policy = r.strategy.stages[s];
  if (!policy || !inWindow(policy.windows, d.nowMs)) return;
  const members = membersOf(r, s);
  const limit = concurrencyOf(policy.maxConcurrent, members.length);
  let inFlight = members.filter(([, c]) => c.phase === 'Updating').length;
  for (const [name, c] of members) {
    if (inFlight >= limit) return;
    if (c.phase !== 'Waiting') continue;
    setClusterPhase(d, name, 'Updating', `admitted by ${stageLabel(r, s)}`);
    inFlight++;
  }
}

/** When the rollout needs deciding on again without any status change; undefined for never. */
export function nextWakeMs(r: Rollout, nowMs: number): number | undefined {
  if (r.phase === 'Superseded' || r.phase === 'RolledBack' || r.phase === 'Aborted')
    return undefined;
  let next: number | undefined;
  const at = (t: number | undefined): void => {
    if (t !== undefined && (next === undefined || t < next)) next = Math.max(t, nowMs);
  };
  for (const c of Object.values(r.clusters))
    if (c.phase === 'Updating') at(c.deadlineFromMs + r.strategy.progressDeadlineMs);
  const run = r.stages[r.stage];
  const policy = r.strategy.stages[r.stage];
  if (run && policy && r.phase === 'Progressing') {
    if (run.healthySinceMs > 0) at(run.healthySinceMs + policy.soakMs);
    const waiting = membersOf(r, r.stage).some(([, c]) => c.phase === 'Waiting');
    if (waiting && !inWindow(policy.windows, nowMs)) at(nextWindowOpen(policy.windows, nowMs));
  }
  return next;
}

function seconds(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}
