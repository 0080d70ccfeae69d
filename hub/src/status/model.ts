// The fleet status model: one record per cluster, folded from three inputs (the
// renderer's desired state, agent sessions, agent events) and a pure rule that turns a
// record into the state users see. Records are what is persisted; views are computed.
import type { BundleApplyResult, BundleChart } from '@flotilla/common';
import { durations } from '@flotilla/common';
import { clusterRenderMessage } from './render-failures.js';
import { shared } from './shared-strings.js';
import type { RenderFailureRecord } from './render-failures.js';
import { clusterHoldMessage } from './rollout-holds.js';
import type { RolloutHoldRecord } from './rollout-holds.js';

/** What a user sees for a cluster. */
export type ClusterState =
  'Pending' | 'Progressing' | 'Ready' | 'Waiting' | 'OutOfSync' | 'Failed' | 'Offline';

/** Outcome of one apply as reported by an ack or an event; waiting: nothing failed, some bundle waits (dependsOn, a Helm hook). */
export type ApplyResult = 'applied' | 'partial' | 'failed' | 'waiting';

/** Per-bundle object counts from the latest apply (the event's result without the failure texts). */
export type BundleStatus = Omit<BundleApplyResult, 'failures'>;

/** The last apply attempt of a cluster, successful or not. */
export interface ApplyAttempt {
  digest: string;
  revision: string;
  result: ApplyResult;
  message: string;
  /** When it happened (event time, or hub time for acks), ms since epoch. */
  atMs: number;
}

/** Everything the hub knows about one cluster; the persisted form (JSON). */
export interface ClusterRecord {
  name: string;
  labels: Record<string, string>;
  /** False when the cluster is not declared in the fleet repo (an unknown agent connected). */
  inFleet: boolean;
  desiredRevision: string;
  desiredDigest: string;
  connected: boolean;
  /** Current session id ("" when disconnected). */
  session: string;
  /** Last contact with the agent, ms since epoch; 0 for never. */
  lastSeenMs: number;
  /** Last successfully applied state. */
  appliedDigest: string;
  appliedRevision: string;
  appliedAtMs: number;
  lastAttempt: ApplyAttempt | undefined;
  /** Time of the newest event folded; older events are ignored. */
  lastEventMs: number;
  bundles: BundleStatus[];
  /** Bundles the desired state holds (name, digest, remote Helm chart), for per-bundle deployments. */
  desiredBundles?: { name: string; digest: string; chart?: BundleChart }[];
  /** Drift, health and error facts per bundle (absent in records written before they existed). */
  bundleFacts?: Record<string, BundleFacts>;
  /** When the cluster last reached its desired state, ms since epoch; 0 for never. */
  lastConvergedMs?: number;
  /** Agent version of the newest session (absent in records written before sessions were recorded). */
  agentVersion?: string;
  /** When a session last started, ms since epoch; 0 for never. */
  lastConnectedMs?: number;
  /** When a session last ended, ms since epoch; 0 for never. */
  lastDisconnectedMs?: number;
  /** Why that session ended. */
  lastDisconnectReason?: string;
  /** What failed to render for this cluster at the last render (absent when nothing did). */
  renderFailures?: RenderFailureRecord[];
  /** Bundles rollouts keep from the head rendering here (absent when none). */
  rolloutHolds?: RolloutHoldRecord[];
  /** When and why the hub last kept less of this cluster than its agent sent (absent: never). */
  degraded?: DegradedNote;
  /**
   * How far the agent's clock is behind the hub's (hub − agent, ms), estimated from its
   * hello and heartbeats; added to its event times. Absent: not known yet (taken as 0).
   */
  clockOffsetMs?: number;
}

/** Input of a cluster cut at the hub's edge, or a status record shrunk or not saved. */
export interface DegradedNote {
  /** What was cut or not saved, e.g. "health.reason over its limit, cut". */
  reason: string;
  /** When it last happened, ms since epoch. */
  atMs: number;
}

/** What drift and health events told about one bundle on one cluster. */
export interface BundleFacts {
  /** Objects drifted now (set by drift-detected, cleared by drift-corrected or a clean apply). */
  drifted: number;
  /** Those objects ("Kind/namespace/name") → time of the newest drift event about each on the agent's clock, for ordering. */
  objects?: Record<string, { atMs: number; drifted: boolean }>;
  /** Drift events seen in total. */
  driftEvents: number;
  lastDriftMs: number;
  /** Id of the last drift event folded, so a redelivery is not counted twice. */
  lastDriftId: string;
  /** Healthy, Progressing, Degraded or "" when unknown. */
  health: string;
  lastHealthMs: number;
  /** The first reason the health is not Ready (absent in records written before it). */
  healthReason?: string;
  /** Commit the health is about ("" when unknown; absent in records written before it). */
  healthRevision?: string;
  /** Desired-state digest the health is about ("" when the agent did not say; absent in older records). */
  healthDigest?: string;
  lastError: string;
  /** When anything about this deployment last changed, ms since epoch. */
  lastTransitionMs: number;
}

/** Facts for a bundle nothing is known about yet. */
export function emptyFacts(): BundleFacts {
  return {
    drifted: 0,
    driftEvents: 0,
    lastDriftMs: 0,
    lastDriftId: '',
    health: '',
    lastHealthMs: 0,
    lastError: '',
    lastTransitionMs: 0,
  };
}

/** A cluster's status as the API returns it. */
export interface ClusterStatus {
  name: string;
  labels: Record<string, string>;
  connected: boolean;
  /** ISO time of the last contact, or null for never. */
  lastSeen: string | null;
  desiredRevision: string;
  desiredDigest: string;
  appliedRevision: string;
  appliedDigest: string;
  state: ClusterState;
  message: string;
  bundles: BundleStatus[];
  /** ISO time the cluster last reached its desired state, or null. */
  lastConverged?: string | null;
  /** Agent version of the newest session ("" when unknown). */
  agentVersion?: string;
  /** ISO time a session last started, or null. */
  lastConnected?: string | null;
  /** ISO time a session last ended, or null. */
  lastDisconnected?: string | null;
  /** Why that session ended ("" when none did). */
  lastDisconnectReason?: string;
  /** What failed to render for this cluster at the last render; [] when nothing did. */
  renderFailures?: RenderFailureRecord[];
  /**
   * Why the agent's last apply of the desired state failed (objects the API server refused,
   * by RBAC or an admission webhook, …); "" when it applied, waits, or is on its way.
   * Shown beside render failures, which otherwise take the cluster's message.
   */
  applyFailure?: string;
  /**
   * What the hub cut of this cluster's input or could not save, while that happened within
   * durations.statusDegradedFor (1 h); "" otherwise.
   */
  degraded?: string;
  /** ISO time the hub last cut this cluster's input or could not save its status, or null. */
  lastDegraded?: string | null;
  /**
   * Bundles rollouts keep from the fleet head here ([] when none): the cluster runs an
   * older rendering of them than the newest commit, and is Waiting once it runs it.
   */
  rolloutHolds?: RolloutHoldRecord[];
}

/** A record for a cluster seen for the first time. */
export function emptyRecord(name: string): ClusterRecord {
  return {
    name,
    labels: {},
    inFleet: false,
    desiredRevision: '',
    desiredDigest: '',
    connected: false,
    session: '',
    lastSeenMs: 0,
    appliedDigest: '',
    appliedRevision: '',
    appliedAtMs: 0,
    lastAttempt: undefined,
    lastEventMs: 0,
    bundles: [],
  };
}

/** Records an apply outcome unless a newer one is already known; returns true when it changed the record. */
export function recordAttempt(rec: ClusterRecord, attempt: ApplyAttempt): boolean {
  if (rec.lastAttempt && rec.lastAttempt.atMs > attempt.atMs) return false;
  rec.lastAttempt = {
    ...attempt,
    digest: shared(attempt.digest),
    revision: shared(attempt.revision),
  };
  if (attempt.result === 'applied' && attempt.atMs >= rec.appliedAtMs) {
    rec.appliedDigest = rec.lastAttempt.digest;
    rec.appliedRevision = rec.lastAttempt.revision;
    rec.appliedAtMs = attempt.atMs;
  }
  return true;
}

/** Per-bundle counts from an event's bundle results. */
export function bundleCounts(results: readonly BundleApplyResult[]): BundleStatus[] {
  return results
    .map((b) => ({
      name: shared(b.name),
      digest: shared(b.digest),
      created: b.created,
      configured: b.configured,
      unchanged: b.unchanged,
      deleted: b.deleted,
      failed: b.failed,
      ...(b.waiting ? { waiting: { for: b.waiting.for, reason: b.waiting.reason } } : {}),
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The state (and its message) a record shows at nowMs; viewOf without building the view.
 * With ignoreRenderFailures, the state from delivery alone: what each deployment's state
 * builds on (a failed render fails its own deployments, not the cluster's others).
 */
export function stateOf(
  rec: ClusterRecord,
  nowMs: number,
  offlineAfterMs: number,
  ignoreRenderFailures = false,
): { state: ClusterState; message: string } {
  if (rec.lastSeenMs === 0 && !rec.connected)
    return { state: 'Pending', message: 'agent has never connected' };
  if (!rec.connected && nowMs - rec.lastSeenMs > offlineAfterMs) {
    return {
      state: 'Offline',
      message: `no contact since ${new Date(rec.lastSeenMs).toISOString()}`,
    };
  }
  // Not Ready while anything failed to render at the desired revision, whatever was applied;
  // what the agent could not apply of the rest is said too, not hidden behind it.
  if (!ignoreRenderFailures && rec.renderFailures && rec.renderFailures.length > 0) {
    const rendered = clusterRenderMessage(rec.renderFailures);
    const applied = applyFailureOf(rec);
    return {
      state: 'Failed',
      message: applied ? `${rendered}; and apply failed: ${applied}` : rendered,
    };
  }
  if (!rec.inFleet || rec.desiredDigest === '') {
    return { state: 'OutOfSync', message: 'cluster is not declared in the fleet repo' };
  }
  const attempt = rec.lastAttempt;
  // A bundle waits for a dependency or a hook: on its way, not failed and not Ready.
  if (attempt && attempt.digest === rec.desiredDigest && attempt.result === 'waiting')
    return { state: 'Progressing', message: attempt.message || 'waiting' };
  if (attempt && attempt.digest === rec.desiredDigest && attempt.result !== 'applied') {
    return { state: 'Failed', message: attempt.message || `apply ${attempt.result}` };
  }
  if (rec.appliedDigest === rec.desiredDigest) {
    // At what its rollouts admit, but behind the head: held, not done.
    if (rec.rolloutHolds && rec.rolloutHolds.length > 0)
      return { state: 'Waiting', message: clusterHoldMessage(rec.rolloutHolds) };
    return { state: 'Ready', message: '' };
  }
  if (rec.connected)
    return {
      state: 'Progressing',
      message: `applying revision ${rec.desiredRevision.slice(0, 12)}`,
    };
  return { state: 'OutOfSync', message: 'agent disconnected before reaching the desired state' };
}

/**
 * Why the last apply of the desired state failed: its message when the agent's last attempt
 * was at the desired digest and did not apply (nor wait); "" otherwise.
 */
export function applyFailureOf(rec: ClusterRecord): string {
  const a = rec.lastAttempt;
  if (!a || rec.desiredDigest === '' || a.digest !== rec.desiredDigest) return '';
  if (a.result === 'applied' || a.result === 'waiting') return '';
  return a.message || `apply ${a.result}`;
}

/** What the hub cut of a record's input, while recent (durations.statusDegradedFor); "" otherwise. */
export function degradedOf(rec: ClusterRecord, nowMs: number): string {
  const d = rec.degraded;
  return d && nowMs - d.atMs <= durations.statusDegradedFor ? d.reason : '';
}

/** The user-facing status of a record at nowMs. */
export function viewOf(rec: ClusterRecord, nowMs: number, offlineAfterMs: number): ClusterStatus {
  const { state, message } = stateOf(rec, nowMs, offlineAfterMs);
  // Same content means the cluster is at the desired commit, whichever commit it applied.
  const atDesired = rec.appliedDigest !== '' && rec.appliedDigest === rec.desiredDigest;
  return {
    name: rec.name,
    labels: { ...rec.labels },
    connected: rec.connected,
    lastSeen: rec.lastSeenMs ? new Date(rec.lastSeenMs).toISOString() : null,
    desiredRevision: rec.desiredRevision,
    desiredDigest: rec.desiredDigest,
    appliedRevision: atDesired ? rec.desiredRevision : rec.appliedRevision,
    appliedDigest: rec.appliedDigest,
    state,
    message,
    bundles: rec.bundles.map((b) => ({ ...b })),
    lastConverged: rec.lastConvergedMs ? new Date(rec.lastConvergedMs).toISOString() : null,
    agentVersion: rec.agentVersion ?? '',
    lastConnected: rec.lastConnectedMs ? new Date(rec.lastConnectedMs).toISOString() : null,
    lastDisconnected: rec.lastDisconnectedMs
      ? new Date(rec.lastDisconnectedMs).toISOString()
      : null,
    lastDisconnectReason: rec.lastDisconnectReason ?? '',
    renderFailures: (rec.renderFailures ?? []).map((f) => ({ ...f })),
    applyFailure: applyFailureOf(rec),
    degraded: degradedOf(rec, nowMs),
    lastDegraded: rec.degraded ? new Date(rec.degraded.atMs).toISOString() : null,
    rolloutHolds: (rec.rolloutHolds ?? []).map((h) => ({ ...h })),
  };
}
