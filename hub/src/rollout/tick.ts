// One decision over a rollout from what fleet status says about its clusters: which
// clusters became healthy at the new revision or missed their deadline, whether a stage
// exceeded its failure budget (halt or roll back), which waiting clusters their stage
// admits now, and whether the current stage has soaked long enough for the next one.
// Pure: time and observations come in, the changed draft goes out. A tick that is not a
// full pass looks only at the clusters whose status changed, and at every cluster only
// once the earliest deadline came: its cost follows what changed, not the fleet's size.
import { ADMITTED } from './model.js';
import type { ClusterRun, Observer, Rollout } from './model.js';
import {
  admittedBy,
  concurrencyOf,
  healthyAt,
  failureBudgetOf,
  inWindow,
  membersOf,
  nextWindowOpen,
  runOf,
  setClusterPhase,
  stageAdmitted,
  stagesDescending,
  setPhase,
  stageCount,
  stageEvent,
  stageLabel,
  stageSize,
} from './transitions.js';
import type { Draft } from './transitions.js';

/** Decides on a rollout at d.nowMs; changes d. */
export function tick(d: Draft, observe: Observer): void {
  const r = d.rollout;
  const pending = r.pending;
  if (pending === 'admit') delete r.pending;
  decide(d, observe, pending === 'admit');
  if (r.pending !== pending) r.updatedMs = d.nowMs;
}

function decide(d: Draft, observe: Observer, admitting: boolean): void {
  const r = d.rollout;
  // A rollback left over by the last decision goes on before anything else.
  if (r.pending === 'rollback') {
    rollBack(d, r.reason);
    return;
  }
  if (r.phase === 'Superseded' || r.phase === 'RolledBack' || r.phase === 'Aborted') return;
  const full = observe.scope() === undefined;
  // After the last stage only late joiners matter: the others' health decides nothing now.
  watchClusters(d, observe, r.phase === 'Completed');
  if (r.phase === 'Halted') return;
  if (r.phase === 'Completed') {
    // A cluster that joins after the last stage gets the revision at once (joins come
    // with a render, so with a full pass).
    if (full)
      for (const name of Object.keys(r.clusters))
        if (runOf(d, name).phase === 'Waiting')
          setClusterPhase(d, name, 'Updating', 'joined after the rollout completed');
    return;
  }
  // Failures only grow by a cluster failing now (or by membership, with a full pass).
  if ((full || d.transitions.some((t) => t.to === 'Failed')) && checkFailures(d)) return;
  if (r.phase === 'Paused') return;
  advance(d, full || admitting);
}

// Health at the new revision moves clusters on: Updating → Healthy, or Failed once the
// deadline passed; a Healthy cluster that reports otherwise (or goes offline) is watched
// again with a new deadline. Paused clusters are skipped while they wait.
function watchClusters(d: Draft, observe: Observer, joinersOnly: boolean): void {
  const r = d.rollout;
  const deadline = r.strategy.progressDeadlineMs;
  const scope = observe.scope();
  const known = r.nextDeadlineMs ?? 0;
  // Every cluster on a full pass or once a deadline may have come; else the changed ones.
  const all = scope === undefined || (known >= 0 && d.nowMs >= known);
  const names: Iterable<string> = all ? Object.keys(r.clusters) : scope;
  let next = -1;
  for (const name of names) {
    const c = r.clusters[name];
    if (!c) continue;
    watchOne(d, observe, name, c, joinersOnly, scope === undefined || scope.has(name));
    const now = runOf(d, name);
    const at = now.deadlineFromMs + deadline;
    if (now.phase === 'Updating' && (next < 0 || at < next)) next = at;
  }
  if (all && next !== r.nextDeadlineMs) r.nextDeadlineMs = next;
}

function watchOne(
  d: Draft,
  observe: Observer,
  name: string,
  c: ClusterRun,
  joinersOnly: boolean,
  changed: boolean,
): void {
  const r = d.rollout;
  const deadline = r.strategy.progressDeadlineMs;
  // Failed stays failed until a retry; rolled back clusters are no longer watched.
  if (c.phase === 'Failed' || c.phase === 'RolledBack') return;
  if (joinersOnly && c.phase !== 'Waiting' && c.phase !== 'Updating') return;
  if (c.phase === 'Waiting' || c.phase === 'Skipped') {
    // Pausing is Git's: it changes with a render, which brings a full pass.
    if (observe.scope() !== undefined) return;
    const paused = observe.paused(name);
    if (c.phase === 'Waiting' && paused) setClusterPhase(d, name, 'Skipped', 'cluster is paused');
    else if (c.phase === 'Skipped' && !paused)
      setClusterPhase(d, name, 'Waiting', 'cluster is no longer paused');
    return;
  }
  const due = c.phase === 'Updating' && d.nowMs - c.deadlineFromMs >= deadline;
  if (!due && !changed) return;
  const o = observe.health(name);
  if (c.phase === 'Updating' && o.healthy)
    setClusterPhase(d, name, 'Healthy', healthyAt(r.revision));
  else if (due)
    setClusterPhase(
      d,
      name,
      'Failed',
      `not healthy at ${r.revision.slice(0, 12)} within ${seconds(deadline)}: ${o.reason || 'no health reported'}`,
    );
  else if (c.phase === 'Healthy' && o.unhealthy)
    setClusterPhase(d, name, 'Updating', `was healthy, now ${o.reason}`);
}

// A stage with more failed clusters than it tolerates stops the rollout: halted where it
// is, or every cluster that took the new revision goes back to what was healthy there.
function checkFailures(d: Draft): boolean {
  const r = d.rollout;
  for (let s = 0; s <= Math.min(r.stage, r.strategy.stages.length - 1); s++) {
    const size = stageSize(d, s);
    const budget = failureBudgetOf(r.strategy.stages[s]?.maxFailures ?? { count: 0 }, size);
    if (stageCount(d, s, 'Failed') <= budget) continue;
    const members = membersOf(d, s);
    const failed = members.filter((n) => runOf(d, n).phase === 'Failed');
    const first = failed[0] as string;
    const why = `${stageLabel(r, s)}: ${failed.length} of ${members.length} clusters failed (${budget} tolerated); ${first}: bundle ${r.bundle} ${runOf(d, first).reason}`;
    if (r.strategy.onFailure === 'rollback') {
      rollBack(d, `rolled back: ${why}`);
      setPhase(d, 'RolledBack', `rolled back: ${why}`);
    } else setPhase(d, 'Halted', `halted: ${why}`);
    return true;
  }
  return false;
}

/**
 * Every cluster running the new revision goes back to what was healthy there: the last
 * stage first, by name within a stage. Past the decision's slice the rest is left for the
 * next decisions (pending `rollback`, which the caller's phase change makes final).
 */
export function rollBack(d: Draft, reason: string): void {
  const r = d.rollout;
  for (const s of stagesDescending(d)) {
    if (stageAdmitted(d, s) === 0) continue;
    for (const name of membersOf(d, s)) {
      if (!ADMITTED.includes(runOf(d, name).phase)) continue;
      if (d.moves <= 0) {
        r.pending = 'rollback';
        return;
      }
      setClusterPhase(d, name, 'RolledBack', reason);
      d.moves--;
    }
  }
  delete r.pending;
}

// Starts stages in order (after approval where required), admits waiting clusters within
// each started stage's concurrency and time windows, and completes the current stage once
// its clusters have all been healthy together for its soak time. Without a full pass or
// news (a transition, a soak ending, a time window) there is nothing to do.
function advance(d: Draft, full: boolean): void {
  const r = d.rollout;
  const run0 = r.stages[r.stage];
  const policy0 = r.strategy.stages[r.stage];
  const soakDue =
    run0 !== undefined &&
    policy0 !== undefined &&
    run0.healthySinceMs > 0 &&
    d.nowMs - run0.healthySinceMs >= policy0.soakMs;
  const windowed = (policy0?.windows.length ?? 0) > 0;
  if (!full && d.transitions.length === 0 && !soakDue && !windowed) return;
  const n = r.strategy.stages.length;
  while (r.stage < n) {
    const s = r.stage;
    const run = r.stages[s];
    const policy = r.strategy.stages[s];
    if (!run || !policy) return;
    const size = stageSize(d, s);
    if (run.startedMs === 0) {
      if (size > 0 && policy.approval && run.approvedBy === '') {
        setPhase(d, 'AwaitingApproval', `${stageLabel(r, s)} waits for approval`);
        return;
      }
      run.startedMs = d.nowMs;
      r.updatedMs = d.nowMs;
      if (r.phase !== 'Progressing') setPhase(d, 'Progressing', `${stageLabel(r, s)} started`);
      stageEvent(d, s, 'StageStarted', `${stageLabel(r, s)} started: ${size} cluster(s)`);
    }
    for (let earlier = 0; earlier <= s; earlier++) admit(d, earlier);
    const done =
      stageCount(d, s, 'Waiting') +
        stageCount(d, s, 'Updating') +
        stageCount(d, s, 'RolledBack') ===
      0;
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
  if (!policy || stageCount(d, s, 'Waiting') === 0 || !inWindow(policy.windows, d.nowMs)) return;
  const limit = concurrencyOf(policy.maxConcurrent, stageSize(d, s));
  let inFlight = stageCount(d, s, 'Updating');
  if (inFlight >= limit) return;
  for (const name of membersOf(d, s)) {
    if (inFlight >= limit) return;
    if (runOf(d, name).phase !== 'Waiting') continue;
    if (d.moves <= 0) {
      // The next decision follows at once and admits the rest (a stage start in slices).
      r.pending = 'admit';
      return;
    }
    setClusterPhase(d, name, 'Updating', admittedBy(r, s));
    d.moves--;
    inFlight++;
  }
}

/** When the rollout needs deciding on again without any status change; undefined for never. */
export function nextWakeMs(r: Rollout, nowMs: number): number | undefined {
  // Clusters left over by the decision's slice: the next decision goes on at once.
  if (r.pending !== undefined) return nowMs;
  if (r.phase === 'Superseded' || r.phase === 'RolledBack' || r.phase === 'Aborted')
    return undefined;
  let next: number | undefined;
  const at = (t: number | undefined): void => {
    if (t !== undefined && (next === undefined || t < next)) next = Math.max(t, nowMs);
  };
  const known = r.nextDeadlineMs ?? 0;
  if (known >= 0) at(known);
  const run = r.stages[r.stage];
  const policy = r.strategy.stages[r.stage];
  if (run && policy && r.phase === 'Progressing') {
    if (run.healthySinceMs > 0) at(run.healthySinceMs + policy.soakMs);
    if (policy.windows.length > 0 && !inWindow(policy.windows, nowMs)) {
      const waiting = Object.values(r.clusters).some(
        (c) => c.stage === r.stage && c.phase === 'Waiting',
      );
      if (waiting) at(nextWindowOpen(policy.windows, nowMs));
    }
  }
  return next;
}

function seconds(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}
