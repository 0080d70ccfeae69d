// The live fleet status: folds desired states, session events and agent events into
// per-cluster records, and answers queries. It implements the stream's SessionObserver.
import type { BundleChart, EventKind, FlotillaEvent, Logger, Selector } from '@flotilla/common';
import { LogFields } from '@flotilla/common';
import type { Ack__Output } from '@flotilla/proto';
import type { HelloSummary, SessionObserver } from '../stream/types.js';
import { countDeployments, deploymentsOf } from './deployments.js';
import type { BundleDeployment, BundleSummary } from './deployments.js';
import { objectKeyOf, readApplied, readDrift, readDropped, readHealth } from './event-data.js';
import type { CutListener, DriftFacts } from './event-data.js';
import { foldHealthFacts } from './health.js';
import { bundleCounts, emptyFacts, emptyRecord, recordAttempt, stateOf, viewOf } from './model.js';
import { ClusterJsonCache } from './cluster-json.js';
import type { JsonBytes } from './cluster-json.js';
import { AgentClocks, CLOCK_OFFSET_RESOLUTION_MS, CLOCK_SKEW_WARN_MS } from './agent-clock.js';
import { DeploymentRowsCache } from './deployment-rows.js';
import type { DeploymentRow } from './deployment-rows.js';
import { newRenderFailures, sameRenderFailures } from './render-failures.js';
import { MAX_ROLLOUT_HOLDS, sameHolds } from './rollout-holds.js';
import type { RolloutHoldRecord } from './rollout-holds.js';
import type { NewRenderFailure, RenderFailureRecord } from './render-failures.js';
import { shrinkRecord } from './record-budget.js';
import { applySessionFacts, isSessionKind, readSession } from './session-events.js';
import type { SessionEventKind } from './session-events.js';
import type {
  ApplyResult,
  BundleFacts,
  ClusterRecord,
  ClusterState,
  ClusterStatus,
} from './model.js';

/** A cluster as the renderer declares it. */
export interface FleetEntry {
  name: string;
  labels: Record<string, string>;
  /** Its desired state, or undefined when rendering produced none (yet). */
  desired:
    | {
        revision: string;
        digest: string;
        bundles?: { name: string; digest: string; chart?: BundleChart | undefined }[];
      }
    | undefined;
  /** What failed to render for it at the last render (none when absent). */
  renderFailures?: readonly RenderFailureRecord[];
  /** Bundles rollouts keep from the head rendering there (none when absent). */
  rolloutHolds?: readonly RolloutHoldRecord[];
}

/** Told about every cluster whose status changed, with its state before (undefined when first seen). */
export type StatusListener = (cluster: ClusterStatus, previous: ClusterState | undefined) => void;

/** Told about every new drift event folded. */
export type DriftListener = (cluster: string, drift: DriftFacts, atMs: number) => void;

/** Told about every part of a cluster's input the hub cut or could not save (what: "health.reason", ...). */
export type CutNoteListener = (cluster: string, what: string) => void;

/** Filters of list(). */
export interface ClusterFilter {
  selector?: Selector | undefined;
  /** Only clusters whose applied revision is this commit (a prefix of 7+ characters matches). */
  revision?: string | undefined;
  /** Only clusters running a bundle with this digest. */
  bundleDigest?: string | undefined;
}

/** Filters of deployments(). */
export interface DeploymentFilter {
  selector?: Selector | undefined;
  bundle?: string | undefined;
  cluster?: string | undefined;
  state?: string | undefined;
}

/** Options of FleetStatus. */
export interface FleetStatusOptions {
  /** A disconnected cluster is Offline after this long (config offlineAfter). */
  offlineAfterMs: number;
  logger: Logger;
  now?: () => number;
}

/** What folding one event did. */
export type FoldOutcome = 'folded' | 'stale' | 'ignored';

const ACK_RESULTS: Record<string, ApplyResult | undefined> = {
  ACK_RESULT_APPLIED: 'applied',
  ACK_RESULT_PARTIAL: 'partial',
  ACK_RESULT_FAILED: 'failed',
  ACK_RESULT_WAITING: 'waiting',
};

/** How often time-dependent states (Offline) are re-evaluated and history is pruned (1 s). */
export const STATUS_SWEEP_INTERVAL_MS = 1_000;

/** lastSeen is re-persisted on heartbeats at most this often (30 s). */
const LAST_SEEN_PERSIST_EVERY_MS = 30_000;

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** Objects remembered per bundle for drift ordering (200); the oldest settled ones go first. */
const MAX_DRIFT_OBJECTS = 200;

/**
 * Bundles a cluster's drift and health events may name beyond those it should run or
 * runs (16): enough for events that arrive before the render naming their bundle, and
 * no more, so made-up bundle names cannot grow the record.
 */
export const MAX_UNLISTED_BUNDLES = 16;

function pruneObjects(objects: Record<string, { atMs: number; drifted: boolean }>): void {
  const keys = Object.keys(objects);
  if (keys.length <= MAX_DRIFT_OBJECTS) return;
  const settled = keys
    .filter((k) => !objects[k]?.drifted)
    .sort((a, b) => (objects[a]?.atMs ?? 0) - (objects[b]?.atMs ?? 0));
  for (const k of settled.slice(0, keys.length - MAX_DRIFT_OBJECTS)) delete objects[k];
}

/** Clusters whose change listeners are told per turn of the event loop (100). */
export const NOTIFY_SLICE = 100;

/** In-memory fleet status model. */
export class FleetStatus implements SessionObserver {
  private readonly records = new Map<string, ClusterRecord>();
  private readonly dirty = new Set<string>();
  /** Records deleted since the last takeRemoved (persistence deletes their keys). */
  private readonly removed = new Set<string>();
  private readonly persistedSeen = new Map<string, number>();
  private readonly clocks = new AgentClocks();
  private readonly now: () => number;
  private readonly listeners = new Set<StatusListener>();
  private readonly driftListeners = new Set<DriftListener>();
  private readonly cutListeners = new Set<CutNoteListener>();
  private readonly touchListeners = new Set<(cluster: string) => void>();
  /** Clusters touch listeners were told are offline (sweep). */
  private readonly offlineTold = new Set<string>();
  private readonly lastState = new Map<string, ClusterState>();
  private readonly pending = new Set<string>();
  private notifyScheduled = false;
  /** Changes per cluster (touches): what invalidates a cached JSON view. */
  private readonly stamps = new Map<string, number>();
  private readonly json = new ClusterJsonCache();
  private readonly rowsCache = new DeploymentRowsCache();
  /** Records sorted by name; undefined after a record was added or replaced. */
  private sorted: ClusterRecord[] | undefined;

  /** When this status began (the hub's start): restored clusters had no chance to dial back before. */
  private readonly startedMs: number;

  constructor(private readonly opts: FleetStatusOptions) {
    this.now = opts.now ?? Date.now;
    this.startedMs = this.now();
  }

  private record(name: string): ClusterRecord {
    let rec = this.records.get(name);
    if (!rec) {
      rec = emptyRecord(name);
      this.records.set(name, rec);
      this.removed.delete(name);
      this.sorted = undefined;
    }
    return rec;
  }

  private touch(name: string): void {
    this.stamps.set(name, (this.stamps.get(name) ?? 0) + 1);
    this.dirty.add(name);
    for (const l of this.touchListeners) l(name);
    if (this.listeners.size === 0) return;
    this.pending.add(name);
    if (!this.notifyScheduled) {
      // Coalesced: a burst of events for one cluster gives one notification.
      this.notifyScheduled = true;
      setImmediate(() => this.notify());
    }
  }

  // At most NOTIFY_SLICE clusters per turn of the event loop: a fan-out changes every
  // cluster within a second, and telling every listener (watch streams serialize each view)
  // of a thousand at once held the loop while queries waited. The rest stay pending, in
  // order, for the next turn; a cluster touched again meanwhile is still told once.
  private notify(): void {
    let n = 0;
    for (const name of this.pending) {
      if (n++ >= NOTIFY_SLICE) break;
      this.pending.delete(name);
      this.emit(name);
    }
    if (this.pending.size > 0) setImmediate(() => this.notify());
    else this.notifyScheduled = false;
  }

  private emit(name: string): void {
    const view = this.get(name);
    if (!view) return;
    const previous = this.lastState.get(name);
    this.lastState.set(name, view.state);
    for (const l of this.listeners) {
      try {
        l(view, previous);
      } catch (err) {
        this.opts.logger.warn(
          { [LogFields.cluster]: name, err: String(err) },
          'status listener failed',
        );
      }
    }
  }

  /** Calls listener on every change; returns an unsubscribe function. */
  onChange(listener: StatusListener): () => void {
    if (this.listeners.size === 0)
      for (const [name, rec] of this.records)
        this.lastState.set(name, this.get(rec.name)?.state ?? 'Pending');
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Calls listener with the cluster's name on every change of its record, at once and
   * without building a view (cheap enough for the ingest path); returns an unsubscribe function.
   */
  onTouched(listener: (cluster: string) => void): () => void {
    this.touchListeners.add(listener);
    return () => this.touchListeners.delete(listener);
  }

  /** Calls listener on every new drift event; returns an unsubscribe function. */
  onDrift(listener: DriftListener): () => void {
    this.driftListeners.add(listener);
    return () => this.driftListeners.delete(listener);
  }

  /** Calls listener on every cut of a cluster's input (for metrics); returns an unsubscribe function. */
  onCut(listener: CutNoteListener): () => void {
    this.cutListeners.add(listener);
    return () => this.cutListeners.delete(listener);
  }

  /**
   * Notes that part of a cluster's input was cut at the hub's edge (what: the field, e.g.
   * "health.reason"): the cluster shows as degraded with it (or with `reason` when
   * given), and listeners count it.
   */
  noteCut(cluster: string, what: string, reason = `${what} over its limit, cut`): void {
    this.degrade(this.record(cluster), reason);
    for (const l of this.cutListeners) l(cluster, what);
  }

  private degrade(rec: ClusterRecord, reason: string): void {
    rec.degraded = { reason, atMs: this.now() };
    this.touch(rec.name);
  }

  private cutOf(cluster: string): CutListener {
    return (what) => this.noteCut(cluster, what);
  }

  /**
   * Shrinks a record that does not fit its saved size (persistence), noting the cluster
   * degraded with what was dropped; a no-op when it fits.
   */
  shrink(name: string, fits: (rec: ClusterRecord) => boolean, budget: string): void {
    const rec = this.records.get(name);
    if (!rec) return;
    const dropped = shrinkRecord(rec, fits);
    if (dropped.length === 0) return;
    rec.degraded = {
      reason: `status record over its ${budget} budget: ${dropped.join(', ')} dropped`,
      atMs: this.now(),
    };
    // A changed view, not a new save: the record is being saved now.
    this.stamps.set(name, (this.stamps.get(name) ?? 0) + 1);
    for (const l of this.cutListeners) l(name, 'status.record');
  }

  /** Notes that a cluster's record could not be saved, and why; it stays to be saved again. */
  unsaved(name: string, reason: string): void {
    const rec = this.records.get(name);
    if (!rec) return;
    rec.degraded = { reason: `status not saved: ${reason}`, atMs: this.now() };
    this.stamps.set(name, (this.stamps.get(name) ?? 0) + 1);
    for (const l of this.cutListeners) l(name, 'status.save');
  }

  /** Re-evaluates time-dependent states (Offline after the timeout) and notifies changes; run periodically. */
  sweep(): void {
    const now = this.now();
    // Going offline changes no record (only time passes): touch listeners hear of it here.
    if (this.touchListeners.size > 0)
      for (const rec of this.records.values()) {
        const offline = !rec.connected && now - rec.lastSeenMs > this.opts.offlineAfterMs;
        if (offline === this.offlineTold.has(rec.name)) continue;
        if (offline) this.offlineTold.add(rec.name);
        else this.offlineTold.delete(rec.name);
        for (const l of this.touchListeners) l(rec.name);
      }
    if (this.listeners.size === 0) return;
    for (const rec of this.records.values()) {
      if (rec.connected) continue;
      const state = viewOf(rec, now, this.opts.offlineAfterMs).state;
      if (state !== this.lastState.get(rec.name)) this.emit(rec.name);
    }
  }

  private facts(rec: ClusterRecord, bundle: string): BundleFacts {
    rec.bundleFacts ??= {};
    let f = rec.bundleFacts[bundle];
    if (!f) {
      f = emptyFacts();
      rec.bundleFacts[bundle] = f;
    }
    return f;
  }

  // Facts of a bundle a drift or health event names; undefined (and cut) for one more
  // bundle the cluster neither should run nor runs, beyond MAX_UNLISTED_BUNDLES.
  private listedFacts(rec: ClusterRecord, bundle: string): BundleFacts | undefined {
    if (rec.bundleFacts?.[bundle]) return rec.bundleFacts[bundle];
    const listed = (name: string): boolean =>
      (rec.desiredBundles ?? []).some((b) => b.name === name) ||
      rec.bundles.some((b) => b.name === name);
    if (!listed(bundle)) {
      const unlisted = Object.keys(rec.bundleFacts ?? {}).filter((n) => !listed(n)).length;
      if (unlisted >= MAX_UNLISTED_BUNDLES) {
        this.noteCut(rec.name, 'bundles.unlisted');
        return undefined;
      }
    }
    return this.facts(rec, bundle);
  }

  private markConverged(rec: ClusterRecord, atMs: number): void {
    if (rec.desiredDigest !== '' && rec.appliedDigest === rec.desiredDigest)
      rec.lastConvergedMs = Math.max(rec.lastConvergedMs ?? 0, atMs);
  }

  /**
   * Loads persisted records. Nobody is connected in a saved record. The hub bounds its
   * restore by a short window, so a slow one may finish after the first render and the
   * first sessions made records of their own: those are merged (mergeRestored), not
   * skipped — skipping lost every applied state and drift count the saved record held.
   */
  restore(records: readonly ClusterRecord[]): void {
    for (const r of records) {
      const saved: ClusterRecord = { ...emptyRecord(r.name), ...r, connected: false, session: '' };
      const live = this.records.get(r.name);
      if (!live) {
        this.records.set(r.name, saved);
        this.sorted = undefined;
        continue;
      }
      const merged = mergeRestored(saved, live);
      this.markConverged(merged, merged.appliedAtMs);
      this.records.set(r.name, merged);
      this.sorted = undefined;
      this.touch(r.name);
    }
  }

  /**
   * Replaces the set of declared clusters and their desired states (after each render).
   * Returns the render failures no record held before (by bundle and revision): a
   * restored record already holds those of its revision, so a restart re-alerts nothing.
   */
  setFleet(entries: readonly FleetEntry[]): NewRenderFailure[] {
    const declared = new Set<string>();
    const fresh: NewRenderFailure[] = [];
    for (const e of entries) {
      declared.add(e.name);
      const rec = this.record(e.name);
      const revision = e.desired?.revision ?? '';
      const digest = e.desired?.digest ?? '';
      const failures = e.renderFailures ?? [];
      const holds = (e.rolloutHolds ?? []).slice(0, MAX_ROLLOUT_HOLDS);
      // Every render lists every cluster: only real changes are persisted.
      if (
        rec.inFleet &&
        rec.desiredRevision === revision &&
        rec.desiredDigest === digest &&
        sameLabels(rec.labels, e.labels) &&
        sameRenderFailures(rec.renderFailures, failures) &&
        sameHolds(rec.rolloutHolds, holds)
      )
        continue;
      fresh.push(...newRenderFailures(e.name, rec.renderFailures, failures));
      if (failures.length > 0) rec.renderFailures = failures.map((f) => ({ ...f }));
      else delete rec.renderFailures;
      if (holds.length > 0) rec.rolloutHolds = holds.map((h) => ({ ...h }));
      else delete rec.rolloutHolds;
      rec.inFleet = true;
      rec.labels = { ...e.labels };
      rec.desiredRevision = revision;
      rec.desiredDigest = digest;
      rec.desiredBundles = (e.desired?.bundles ?? []).map((b) => ({
        name: b.name,
        digest: b.digest,
        ...(b.chart ? { chart: b.chart } : {}),
      }));
      this.markConverged(rec, this.now());
      this.touch(e.name);
    }
    for (const rec of [...this.records.values()]) {
      if (declared.has(rec.name) || !rec.inFleet) continue;
      if (neverSeenByAgent(rec)) {
        // Only the fleet repo ever named it (e.g. one of thousands of cluster files pushed
        // and then removed): nothing to show once its file is gone.
        this.forget(rec.name);
        continue;
      }
      rec.inFleet = false;
      rec.desiredRevision = '';
      rec.desiredDigest = '';
      delete rec.renderFailures;
      delete rec.rolloutHolds;
      this.touch(rec.name);
    }
    return fresh;
  }

  connected(cluster: string, session: string, hello: HelloSummary): void {
    const rec = this.record(cluster);
    const now = this.now();
    rec.connected = true;
    rec.session = session;
    rec.lastSeenMs = now;
    this.clocks.reset(cluster);
    this.clockSample(rec, now, Number(hello.sentAtMs ?? 0), true);
    applySessionFacts(
      rec,
      'connected',
      { agentVersion: hello.agentVersion, reason: '' },
      now,
      true,
    );
    if (hello.appliedDigest) {
      // The agent's word on what it last applied successfully; newer than anything we hold.
      rec.appliedDigest = hello.appliedDigest;
      rec.appliedRevision = hello.appliedRevision;
      rec.appliedAtMs = Math.max(rec.appliedAtMs, now);
      this.markConverged(rec, now);
    }
    this.touch(cluster);
  }

  seen(cluster: string, session: string, agentClockMs?: number): void {
    const rec = this.records.get(cluster);
    if (!rec || rec.session !== session) return;
    rec.lastSeenMs = this.now();
    if (agentClockMs) this.clockSample(rec, rec.lastSeenMs, agentClockMs, false);
    if (rec.lastSeenMs - (this.persistedSeen.get(cluster) ?? 0) >= LAST_SEEN_PERSIST_EVERY_MS)
      this.touch(cluster);
  }

  acked(cluster: string, ack: Ack__Output): void {
    const result = ACK_RESULTS[ack.result];
    if (!result) {
      this.opts.logger.warn(
        { [LogFields.cluster]: cluster, result: ack.result },
        'ack without a result, ignored',
      );
      return;
    }
    const rec = this.record(cluster);
    rec.lastSeenMs = this.now();
    const message =
      result === 'applied'
        ? ''
        : ack.message ||
          `${ack.objectsFailed} of ${ack.objectsApplied + ack.objectsFailed} objects failed`;
    recordAttempt(rec, {
      digest: ack.digest,
      revision: ack.revision,
      result,
      message,
      atMs: this.now(),
    });
    this.markConverged(rec, this.now());
    this.touch(cluster);
  }

  /** Updates the estimate of how far the agent's clock is off (see agent-clock.ts). */
  private clockSample(
    rec: ClusterRecord,
    hubMs: number,
    agentMs: number,
    newSession: boolean,
  ): void {
    if (!agentMs) return;
    const offset = this.clocks.sample(rec.name, hubMs, agentMs);
    if (offset === undefined) return;
    const known = rec.clockOffsetMs ?? 0;
    if (Math.abs(offset - known) < CLOCK_OFFSET_RESOLUTION_MS) return;
    rec.clockOffsetMs = Math.round(offset);
    if (newSession && Math.abs(offset) >= CLOCK_SKEW_WARN_MS) {
      this.opts.logger.warn(
        { [LogFields.cluster]: rec.name, clockOffsetMs: rec.clockOffsetMs },
        "agent's clock is off the hub's; its event times are corrected by the offset",
      );
    }
    this.touch(rec.name);
  }

  /** An agent's event time on the hub's clock (see agent-clock.ts). */
  private hubTimeOf(rec: ClusterRecord, event: FlotillaEvent): number {
    return Date.parse(event.time) + (rec.clockOffsetMs ?? 0);
  }

  disconnected(cluster: string, session: string, reason: string): void {
    const rec = this.records.get(cluster);
    // A replaced session reports after its successor connected: not a disconnect.
    if (!rec || rec.session !== session) return;
    rec.connected = false;
    rec.session = '';
    rec.lastSeenMs = this.now();
    applySessionFacts(rec, 'disconnected', { agentVersion: '', reason }, rec.lastSeenMs, true);
    this.touch(cluster);
  }

  /** Folds one agent or session event; throws ValidationError when its data is malformed. */
  foldEvent(kind: EventKind, event: FlotillaEvent): FoldOutcome {
    if (isSessionKind(kind)) return this.foldSession(kind, event);
    if (kind === 'drift-detected' || kind === 'drift-corrected') return this.foldDrift(kind, event);
    if (kind === 'health-changed') return this.foldHealth(event);
    if (kind === 'events-dropped') {
      // Events that never reached the hub: the cluster's status says so (and /metrics counts it).
      this.noteCut(event.flotillacluster, 'agent.events', readDropped(event.data).message);
      return 'folded';
    }
    if (kind !== 'applied' && kind !== 'apply-failed') return 'ignored';
    const data = readApplied(event.data, this.cutOf(event.flotillacluster));
    const rec = this.record(event.flotillacluster);
    const atMs = this.hubTimeOf(rec, event);
    // Redelivered and late events are harmless: only a newer event changes the record.
    if (atMs < rec.lastEventMs) return 'stale';
    rec.lastEventMs = atMs;
    const result: ApplyResult =
      kind === 'apply-failed' && data.result === 'applied' ? 'failed' : data.result;
    const failures = data.bundles.flatMap((b) => b.failures ?? []).slice(0, 3);
    const message =
      result === 'applied' ? '' : data.message || failures.join('; ') || `apply ${result}`;
    recordAttempt(rec, { digest: data.digest, revision: data.revision, result, message, atMs });
    rec.bundles = bundleCounts(data.bundles);
    for (const b of data.bundles) {
      const f = this.facts(rec, b.name);
      f.lastError =
        b.failed > 0
          ? (b.failures ?? []).slice(0, 3).join('; ') || `${b.failed} objects failed`
          : '';
      // A clean apply of a bundle puts its objects back as desired: no drift remains.
      if (result === 'applied' && b.failed === 0) {
        f.drifted = 0;
        for (const o of Object.values(f.objects ?? {})) o.drifted = false;
      }
      f.lastTransitionMs = atMs;
    }
    this.markConverged(rec, atMs);
    this.touch(rec.name);
    return 'folded';
  }

  private foldDrift(kind: 'drift-detected' | 'drift-corrected', event: FlotillaEvent): FoldOutcome {
    const drift = readDrift(event.data, this.cutOf(event.flotillacluster));
    const rec = this.record(event.flotillacluster);
    const atMs = this.hubTimeOf(rec, event);
    // Objects are ordered on the agent's own clock: the hub's estimate of its offset moves
    // between sessions, and an event folded again after it moved must not look newer.
    const agentMs = Date.parse(event.time);
    let changed = false;
    const detected = kind === 'drift-detected';
    let refused = 0;
    for (const bundle of drift.bundles) {
      const f = this.listedFacts(rec, bundle);
      if (!f) refused++;
      if (!f || f.lastDriftId === event.id) continue;
      // Each object keeps the time of the newest event about it: an older or redelivered
      // event changes nothing, so any order of delivery ends in the same state.
      const objects = (f.objects ??= {});
      const keys = drift.objects.filter((o) => o.bundle === bundle).map(objectKeyOf);
      if (keys.length === 0) keys.push('*');
      const fresh = keys.filter((k) => (objects[k]?.atMs ?? -1) < agentMs);
      if (fresh.length === 0) continue;
      for (const k of fresh) objects[k] = { atMs: agentMs, drifted: detected };
      if (!detected && keys[0] === '*')
        for (const o of Object.values(objects)) if (o.atMs <= agentMs) o.drifted = false;
      pruneObjects(objects);
      if (detected) f.driftEvents++;
      f.drifted = Object.values(objects).filter((o) => o.drifted).length;
      f.lastDriftMs = Math.max(f.lastDriftMs, atMs);
      f.lastDriftId = event.id;
      f.lastTransitionMs = atMs;
      changed = true;
    }
    if (!changed) return refused === drift.bundles.length ? 'ignored' : 'stale';
    this.touch(rec.name);
    if (kind === 'drift-detected') for (const l of this.driftListeners) l(rec.name, drift, atMs);
    return 'folded';
  }

  // The durable record of a session start or end: history and lastSeen for every hub, and
  // what a restarted hub knows about sessions before agents reconnect.
  private foldSession(kind: SessionEventKind, event: FlotillaEvent): FoldOutcome {
    const facts = readSession(event.data);
    const rec = this.record(event.flotillacluster);
    if (!applySessionFacts(rec, kind, facts, Date.parse(event.time))) return 'stale';
    this.touch(rec.name);
    return 'folded';
  }

  private foldHealth(event: FlotillaEvent): FoldOutcome {
    const h = readHealth(event.data, this.cutOf(event.flotillacluster));
    const rec = this.record(event.flotillacluster);
    const f = this.listedFacts(rec, h.bundle);
    if (!f) return 'ignored';
    if (!foldHealthFacts(rec, f, h, this.hubTimeOf(rec, event))) return 'stale';
    this.touch(rec.name);
    return 'folded';
  }

  /** A bundle's health on a cluster, for the rollout controller; undefined for an unknown cluster. */
  bundleHealth(
    cluster: string,
    bundle: string,
  ): { offline: boolean; health: string; healthDigest: string; healthReason: string } | undefined {
    const rec = this.records.get(cluster);
    if (!rec) return undefined;
    const now = this.now();
    const state = stateOf(rec, now, this.opts.offlineAfterMs, true).state;
    const f = rec.bundleFacts?.[bundle];
    // A restarted hub's restored clusters are all disconnected until their agents dial
    // back: a rollout counts one offline only after offlineAfterMs since this hub started
    // (status itself still says when it was last seen).
    const offline =
      state === 'Pending' ||
      (state === 'Offline' && now - this.startedMs > this.opts.offlineAfterMs);
    return {
      offline,
      health: f?.health ?? '',
      healthDigest: f?.healthDigest ?? '',
      healthReason: f?.healthReason ?? '',
    };
  }

  /** Deployments (bundle × cluster) matching filter, sorted by bundle then cluster. */
  deployments(filter: DeploymentFilter = {}): BundleDeployment[] {
    return this.deploymentRows(filter).map((r) => r.deployment);
  }

  /** What deployments(filter) returns, each as its JSON in UTF-8 bytes (cached until its cluster changes; not to be changed). */
  deploymentsBytes(filter: DeploymentFilter = {}): JsonBytes[] {
    return this.deploymentRows(filter).map((r) => r.json);
  }

  private deploymentRows(filter: DeploymentFilter): DeploymentRow[] {
    const now = this.now();
    const one = filter.cluster ? this.records.get(filter.cluster) : undefined;
    const recs = filter.cluster ? (one ? [one] : []) : this.sortedRecords();
    // Records come sorted by name: bucketing by bundle keeps clusters in order in each.
    const byBundle = new Map<string, DeploymentRow[]>();
    for (const rec of recs) {
      if (filter.selector && !filter.selector.matches(rec.labels)) continue;
      const state = stateOf(rec, now, this.opts.offlineAfterMs, true).state;
      for (const row of this.rowsCache.rows(rec, this.stamps.get(rec.name) ?? 0, state)) {
        const d = row.deployment;
        if (filter.bundle && d.bundle !== filter.bundle) continue;
        if (filter.state && d.state !== filter.state) continue;
        let bucket = byBundle.get(d.bundle);
        if (!bucket) byBundle.set(d.bundle, (bucket = []));
        bucket.push(row);
      }
    }
    const bundles = [...byBundle.keys()].sort();
    return bundles.flatMap((b) => byBundle.get(b) ?? []);
  }

  // Every record sorted by name, rebuilt only when a record is added or replaced.
  private sortedRecords(): readonly ClusterRecord[] {
    if (!this.sorted) {
      this.sorted = [...this.records.values()].sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
      );
    }
    return this.sorted;
  }

  /** Every bundle with its deployment counts per state, across the whole fleet. */
  bundleSummaries(): BundleSummary[] {
    const now = this.now();
    const by = new Map<string, BundleSummary>();
    for (const rec of this.records.values())
      countDeployments(rec, stateOf(rec, now, this.opts.offlineAfterMs, true).state, by);
    return [...by.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** A cluster with its deployments, or undefined. */
  describe(name: string): { cluster: ClusterStatus; deployments: BundleDeployment[] } | undefined {
    const rec = this.records.get(name);
    if (!rec) return undefined;
    const now = this.now();
    const cluster = viewOf(rec, now, this.opts.offlineAfterMs);
    const delivery = stateOf(rec, now, this.opts.offlineAfterMs, true).state;
    return { cluster, deployments: deploymentsOf(rec, delivery) };
  }

  private matching(filter: Selector | ClusterFilter | undefined, now: number): ClusterRecord[] {
    const f: ClusterFilter = filter && 'matches' in filter ? { selector: filter } : (filter ?? {});
    const rev = f.revision;
    return this.sortedRecords()
      .filter((r) => !f.selector || f.selector.matches(r.labels))
      .filter(
        (r) =>
          !rev ||
          (rev.length >= 7 &&
            viewOf(r, now, this.opts.offlineAfterMs).appliedRevision.startsWith(rev)),
      )
      .filter((r) => !f.bundleDigest || r.bundles.some((b) => b.digest === f.bundleDigest));
  }

  /** All clusters matching selector (all when none), sorted by name. */
  list(filter?: Selector | ClusterFilter): ClusterStatus[] {
    const now = this.now();
    return this.matching(filter, now).map((r) => viewOf(r, now, this.opts.offlineAfterMs));
  }

  /** What list(filter) returns, each cluster as its JSON in UTF-8 bytes (cached until it changes; not to be changed). */
  listBytes(filter?: Selector | ClusterFilter): JsonBytes[] {
    const now = this.now();
    return this.matching(filter, now).map((r) =>
      this.json.bytes(r, this.stamps.get(r.name) ?? 0, now, this.opts.offlineAfterMs),
    );
  }

  /** get(name) as its JSON in UTF-8 bytes, cached until the cluster changes (as listBytes's), or undefined. */
  clusterBytes(name: string): JsonBytes | undefined {
    const rec = this.records.get(name);
    return rec
      ? this.json.bytes(rec, this.stamps.get(name) ?? 0, this.now(), this.opts.offlineAfterMs)
      : undefined;
  }

  /** One cluster's status, or undefined. */
  get(name: string): ClusterStatus | undefined {
    const rec = this.records.get(name);
    return rec ? viewOf(rec, this.now(), this.opts.offlineAfterMs) : undefined;
  }

  /**
   * The records changed since the last call, for persistence. They are the live records,
   * not copies (a copy of every record each second was most of the save's garbage): one
   * serialized after a later fold holds more than was taken, and is dirty again.
   */
  takeDirty(): readonly ClusterRecord[] {
    const out: ClusterRecord[] = [];
    for (const name of this.dirty) {
      const rec = this.records.get(name);
      if (!rec) continue;
      this.persistedSeen.set(name, rec.lastSeenMs);
      out.push(rec);
    }
    this.dirty.clear();
    return out;
  }

  /** Clusters whose records were deleted since the last call, for persistence. */
  takeRemoved(): string[] {
    const out = [...this.removed];
    this.removed.clear();
    return out;
  }

  /** Puts names back after a failed delete (unless the cluster is back meanwhile). */
  markRemoved(names: readonly string[]): void {
    for (const n of names) if (!this.records.has(n)) this.removed.add(n);
  }

  private forget(name: string): void {
    this.records.delete(name);
    this.sorted = undefined;
    this.clocks.forget(name);
    this.dirty.delete(name);
    this.removed.add(name);
    this.lastState.delete(name);
    this.persistedSeen.delete(name);
    this.offlineTold.delete(name);
    this.stamps.set(name, (this.stamps.get(name) ?? 0) + 1);
    for (const l of this.touchListeners) l(name);
  }

  /** Puts records back in the dirty set after a failed save. */
  markDirty(names: readonly string[]): void {
    for (const n of names) this.dirty.add(n);
  }
}

/** A record only the fleet repo made: no agent ever connected or reported for it. */
function neverSeenByAgent(rec: ClusterRecord): boolean {
  return !rec.connected && rec.lastSeenMs === 0 && rec.appliedDigest === '' && rec.session === '';
}

/**
 * A saved record restored after the hub made one of its own for the same cluster: what the
 * live record learned since the start wins — the render's desired state, sessions, an
 * agent's word on what it applied (its hello) — and what only events taught (apply
 * results, bundle facts with their drift counts, the clock offset) comes from the saved
 * record, unless the live one folded newer events. The hub folds no event before its
 * restore settled, so the live record has none of those at first.
 */
export function mergeRestored(saved: ClusterRecord, live: ClusterRecord): ClusterRecord {
  const out: ClusterRecord = { ...saved };
  if (live.inFleet) {
    out.inFleet = true;
    out.labels = live.labels;
    out.desiredRevision = live.desiredRevision;
    out.desiredDigest = live.desiredDigest;
    if (live.desiredBundles) out.desiredBundles = live.desiredBundles;
    else delete out.desiredBundles;
    if (live.renderFailures) out.renderFailures = live.renderFailures;
    else delete out.renderFailures;
    if (live.rolloutHolds) out.rolloutHolds = live.rolloutHolds;
    else delete out.rolloutHolds;
  }
  out.connected = live.connected;
  out.session = live.session;
  out.lastSeenMs = Math.max(saved.lastSeenMs, live.lastSeenMs);
  if (live.agentVersion !== undefined) out.agentVersion = live.agentVersion;
  if (live.lastConnectedMs !== undefined) out.lastConnectedMs = live.lastConnectedMs;
  if (live.lastDisconnectedMs !== undefined) {
    out.lastDisconnectedMs = live.lastDisconnectedMs;
    out.lastDisconnectReason = live.lastDisconnectReason ?? '';
  }
  if (live.clockOffsetMs !== undefined) out.clockOffsetMs = live.clockOffsetMs;
  if (live.appliedAtMs > saved.appliedAtMs) {
    out.appliedDigest = live.appliedDigest;
    out.appliedRevision = live.appliedRevision;
    out.appliedAtMs = live.appliedAtMs;
  }
  if (live.lastEventMs > saved.lastEventMs) {
    out.lastEventMs = live.lastEventMs;
    out.lastAttempt = live.lastAttempt;
    out.bundles = live.bundles;
  }
  if (live.bundleFacts) {
    const facts = { ...saved.bundleFacts };
    for (const [bundle, f] of Object.entries(live.bundleFacts)) {
      const s = facts[bundle];
      if (!s || f.lastTransitionMs > s.lastTransitionMs) facts[bundle] = f;
    }
    out.bundleFacts = facts;
  }
  if (live.lastConvergedMs !== undefined)
    out.lastConvergedMs = Math.max(saved.lastConvergedMs ?? 0, live.lastConvergedMs);
  return out;
}
