// Bundle deployments (bundle × cluster) and fleet-wide bundle summaries, computed from
// cluster records on demand: the record is the one source of truth, views are derived.
import type { BundleChart } from '@flotilla/common';
import type { BundleFacts, BundleStatus, ClusterRecord, ClusterState } from './model.js';
import { emptyFacts } from './model.js';
import { renderFailureFor, renderFailureReason } from './render-failures.js';
import type { RenderFailureRecord } from './render-failures.js';
import { holdText } from './rollout-holds.js';
import type { RolloutHoldRecord } from './rollout-holds.js';

/** What a user sees for one bundle on one cluster. */
export type DeploymentState =
  | 'Pending'
  | 'Progressing'
  | 'Waiting'
  | 'Ready'
  | 'OutOfSync'
  | 'Drifted'
  | 'Degraded'
  | 'Failed'
  | 'Offline';

/** Every deployment state, in display order. */
export const DEPLOYMENT_STATES: readonly DeploymentState[] = [
  'Ready',
  'Progressing',
  'Waiting',
  'Pending',
  'OutOfSync',
  'Drifted',
  'Degraded',
  'Failed',
  'Offline',
];

/** One bundle on one cluster, as the API returns it. */
export interface BundleDeployment {
  bundle: string;
  cluster: string;
  state: DeploymentState;
  reason: string;
  desiredDigest: string;
  appliedDigest: string;
  created: number;
  configured: number;
  unchanged: number;
  deleted: number;
  failed: number;
  drifted: number;
  /** Drift detections folded (a detection arriving after a newer correction of its object is history only). */
  driftEvents: number;
  health: string;
  /** The first reason the health is not Ready, e.g. "apps/Deployment/web/api: 0 of 3 replicas available". */
  healthReason: string;
  /** Commit the health was reported at ("" when unknown). */
  healthRevision: string;
  /**
   * Desired-state digest the health was reported at ("" when the agent did not say): equal
   * to the cluster's appliedDigest when the health is about what the cluster runs now.
   */
  healthDigest: string;
  lastError: string;
  /** ISO time of the last change, or null. */
  lastTransition: string | null;
  /** Why the bundle did not render for this cluster at the desired revision; null when it did (absent from older hubs). */
  renderFailure?: RenderFailureRecord | null;
  /**
   * Only in state Waiting: the bundle it waits for (dependsOn), the hook ("pre-install hook
   * Job/ns/name"), or the rollout holding it ("rollout web@1a2b3c4d5e6f-2").
   */
  waitingFor?: string;
  /** The rollout keeping this deployment at an older rendering than the fleet head; null when none. */
  rolloutHold?: RolloutHoldRecord | null;
  /** The chart the desired bundle was rendered from, when it came from a repository or registry: resolved version and archive digest. */
  chart?: BundleChart;
}

/** A bundle across the fleet: how many clusters it targets and how many are in each state. */
export interface BundleSummary {
  name: string;
  clusters: number;
  /** Counts per state; every state is present (0 when none), never truncated. */
  states: Record<DeploymentState, number>;
}

function stateOf(
  clusterState: ClusterState,
  desired: string,
  applied: Pick<BundleStatus, 'digest' | 'failed' | 'waiting'> | undefined,
  facts: BundleFacts,
  failure: RenderFailureRecord | undefined,
): { state: DeploymentState; reason: string } {
  // A fact about Git, true whatever the agent is doing: first.
  if (failure) return { state: 'Failed', reason: renderFailureReason(failure) };
  if (clusterState === 'Offline') return { state: 'Offline', reason: 'cluster is offline' };
  if (clusterState === 'Pending') return { state: 'Pending', reason: 'agent has never connected' };
  if (applied?.waiting && applied.digest === desired)
    return { state: 'Waiting', reason: applied.waiting.reason };
  if (!applied || applied.digest !== desired) {
    if (clusterState === 'Failed')
      return { state: 'Failed', reason: facts.lastError || 'apply failed' };
    if (clusterState === 'Progressing') return { state: 'Progressing', reason: 'applying' };
    return {
      state: 'OutOfSync',
      reason: applied ? 'an older version is applied' : 'not applied yet',
    };
  }
  if (applied.failed > 0)
    return { state: 'Failed', reason: facts.lastError || `${applied.failed} objects failed` };
  if (facts.drifted > 0) return { state: 'Drifted', reason: `${facts.drifted} objects drifted` };
  if (facts.health === 'Degraded' || facts.health === 'Failed')
    return { state: 'Degraded', reason: `workloads are ${facts.health.toLowerCase()}` };
  return { state: 'Ready', reason: '' };
}

// A deployment running what its rollout admits (or nothing yet, when it admits nothing)
// waits for the rollout rather than being done.
function heldState(
  base: { state: DeploymentState; reason: string },
  hold: RolloutHoldRecord | undefined,
  want: string,
): { state: DeploymentState; reason: string } {
  if (!hold) return base;
  if (base.state === 'Ready' || (want === '' && base.state === 'OutOfSync'))
    return { state: 'Waiting', reason: holdText(hold) };
  return base;
}

const NO_FACTS = emptyFacts();

type Slot = {
  name: string;
  want: string;
  chart: BundleChart | undefined;
  have: BundleStatus | undefined;
  facts: BundleFacts;
  failure: RenderFailureRecord | undefined;
  hold: RolloutHoldRecord | undefined;
};

// Every desired bundle, plus applied bundles no longer desired, plus bundles that failed
// to render with nothing to serve, in the record's order; only the named bundle's slot
// when only is given (a per-bundle query over the whole fleet then costs one slot per
// cluster, not twenty).
function slotsOf(rec: ClusterRecord, only?: string): Slot[] {
  const desired = rec.desiredBundles ?? [];
  const findApplied = (name: string) => rec.bundles.find((b) => b.name === name);
  const all =
    desired.length > 0 || rec.desiredDigest !== ''
      ? desired.map((b) => b.name)
      : rec.bundles.map((b) => b.name);
  for (const f of rec.renderFailures ?? [])
    if (f.bundle && !all.includes(f.bundle)) all.push(f.bundle);
  // A bundle a rollout has not brought here yet is a deployment too: Waiting.
  for (const h of rec.rolloutHolds ?? []) if (!all.includes(h.bundle)) all.push(h.bundle);
  const names = only === undefined ? all : all.filter((n) => n === only);
  return names.map((name) => {
    const have = findApplied(name);
    const d = desired.find((b) => b.name === name);
    const want = d?.digest ?? have?.digest ?? '';
    const failure = renderFailureFor(rec.renderFailures, name);
    const hold = rec.rolloutHolds?.find((h) => h.bundle === name);
    const facts = rec.bundleFacts?.[name] ?? NO_FACTS;
    return { name, want, chart: d?.chart, have, facts, failure, hold };
  });
}

/**
 * The deployments of one cluster: every desired bundle, plus applied bundles no longer
 * desired; only bundle `only`'s when given.
 */
export function deploymentsOf(
  rec: ClusterRecord,
  clusterState: ClusterState,
  only?: string,
): BundleDeployment[] {
  const out: BundleDeployment[] = [];
  for (const { name, want, chart, have, facts, failure, hold } of slotsOf(rec, only)) {
    const { state, reason } = heldState(
      stateOf(clusterState, want, have, facts, failure),
      hold,
      want,
    );
    out.push({
      bundle: name,
      cluster: rec.name,
      state,
      reason,
      desiredDigest: want,
      appliedDigest: have?.digest ?? '',
      created: have?.created ?? 0,
      configured: have?.configured ?? 0,
      unchanged: have?.unchanged ?? 0,
      deleted: have?.deleted ?? 0,
      failed: have?.failed ?? 0,
      drifted: facts.drifted,
      driftEvents: facts.driftEvents,
      health: facts.health,
      healthReason: facts.healthReason ?? '',
      healthRevision: facts.healthRevision ?? '',
      healthDigest: facts.healthDigest ?? '',
      lastError: facts.lastError,
      lastTransition: facts.lastTransitionMs
        ? new Date(facts.lastTransitionMs).toISOString()
        : null,
      renderFailure: failure ? { ...failure } : null,
      ...(state === 'Waiting'
        ? { waitingFor: have?.waiting?.for ?? (hold ? `rollout ${hold.rollout}` : '') }
        : {}),
      rolloutHold: hold ? { ...hold } : null,
      ...(chart ? { chart: { ...chart } } : {}),
    });
  }
  return out.sort((a, b) => (a.bundle < b.bundle ? -1 : a.bundle > b.bundle ? 1 : 0));
}

/** Adds one cluster's deployments to per-bundle counts (what summaries need, without building deployments). */
export function countDeployments(
  rec: ClusterRecord,
  clusterState: ClusterState,
  by: Map<string, BundleSummary>,
): void {
  for (const { name, want, have, facts, failure, hold } of slotsOf(rec)) {
    let s = by.get(name);
    if (!s) {
      s = { name, clusters: 0, states: zeroStates() };
      by.set(name, s);
    }
    s.clusters++;
    s.states[heldState(stateOf(clusterState, want, have, facts, failure), hold, want).state]++;
  }
}

/** Zero counts for every state. */
export function zeroStates(): Record<DeploymentState, number> {
  return Object.fromEntries(DEPLOYMENT_STATES.map((s) => [s, 0])) as Record<
    DeploymentState,
    number
  >;
}

/** Folds deployments into per-bundle summaries, sorted by bundle name. */
export function summarize(deployments: Iterable<BundleDeployment>): BundleSummary[] {
  const by = new Map<string, BundleSummary>();
  for (const d of deployments) {
    let s = by.get(d.bundle);
    if (!s) {
      s = { name: d.bundle, clusters: 0, states: zeroStates() };
      by.set(d.bundle, s);
    }
    s.clusters++;
    s.states[d.state]++;
  }
  return [...by.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
