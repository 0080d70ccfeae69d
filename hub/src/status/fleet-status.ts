// The live fleet status: folds desired states, session events and agent events into
// per-cluster records, and answers queries. It implements the stream's SessionObserver.
import type { AppliedData, EventKind, FlotillaEvent, Logger, Selector } from '@flotilla/common';
import { LogFields, ValidationError } from '@flotilla/common';
import type { Ack__Output, Hello__Output } from '@flotilla/proto';
import type { SessionObserver } from '../stream/types.js';
import { bundleCounts, emptyRecord, recordAttempt, viewOf } from './model.js';
import type { ApplyResult, ClusterRecord, ClusterStatus } from './model.js';

/** A cluster as the renderer declares it. */
export interface FleetEntry {
  name: string;
  labels: Record<string, string>;
  /** Its desired state, or undefined when rendering produced none (yet). */
  desired: { revision: string; digest: string } | undefined;
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
};

/** lastSeen is re-persisted on heartbeats at most this often (30 s). */
const LAST_SEEN_PERSIST_EVERY_MS = 30_000;

function checkAppliedData(data: unknown): AppliedData {
  const d = data as Partial<AppliedData>;
  if (typeof d.digest !== 'string' || typeof d.revision !== 'string') {
    throw new ValidationError('applied event data needs digest and revision strings');
  }
  if (d.result !== 'applied' && d.result !== 'partial' && d.result !== 'failed') {
    throw new ValidationError(`applied event has an invalid result ${JSON.stringify(d.result)}`);
  }
  if (!Array.isArray(d.bundles)) throw new ValidationError('applied event data needs a bundles list');
  return d as AppliedData;
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** In-memory fleet status model. */
export class FleetStatus implements SessionObserver {
  private readonly records = new Map<string, ClusterRecord>();
  private readonly dirty = new Set<string>();
  private readonly persistedSeen = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly opts: FleetStatusOptions) {
    this.now = opts.now ?? Date.now;
  }

  private record(name: string): ClusterRecord {
    let rec = this.records.get(name);
    if (!rec) {
      rec = emptyRecord(name);
      this.records.set(name, rec);
    }
    return rec;
  }

  private touch(name: string): void {
    this.dirty.add(name);
  }

  /** Loads persisted records (at start, before sessions exist): nobody is connected yet. */
  restore(records: readonly ClusterRecord[]): void {
    for (const r of records) {
      if (this.records.has(r.name)) continue;
      this.records.set(r.name, { ...emptyRecord(r.name), ...r, connected: false, session: '' });
    }
  }

  /** Replaces the set of declared clusters and their desired states (after each render). */
  setFleet(entries: readonly FleetEntry[]): void {
    const declared = new Set<string>();
    for (const e of entries) {
      declared.add(e.name);
      const rec = this.record(e.name);
      const revision = e.desired?.revision ?? '';
      const digest = e.desired?.digest ?? '';
      // Every render lists every cluster: only real changes are persisted.
      if (rec.inFleet && rec.desiredRevision === revision && rec.desiredDigest === digest && sameLabels(rec.labels, e.labels)) continue;
      rec.inFleet = true;
      rec.labels = { ...e.labels };
      rec.desiredRevision = revision;
      rec.desiredDigest = digest;
      this.touch(e.name);
    }
    for (const rec of this.records.values()) {
      if (declared.has(rec.name) || !rec.inFleet) continue;
      rec.inFleet = false;
      rec.desiredRevision = '';
      rec.desiredDigest = '';
      this.touch(rec.name);
    }
  }

  connected(cluster: string, session: string, hello: Hello__Output): void {
    const rec = this.record(cluster);
    const now = this.now();
    rec.connected = true;
    rec.session = session;
    rec.lastSeenMs = now;
    if (hello.appliedDigest) {
      // The agent's word on what it last applied successfully; newer than anything we hold.
      rec.appliedDigest = hello.appliedDigest;
      rec.appliedRevision = hello.appliedRevision;
      rec.appliedAtMs = Math.max(rec.appliedAtMs, now);
    }
    this.touch(cluster);
  }

  seen(cluster: string, session: string): void {
    const rec = this.records.get(cluster);
    if (!rec || rec.session !== session) return;
    rec.lastSeenMs = this.now();
    if (rec.lastSeenMs - (this.persistedSeen.get(cluster) ?? 0) >= LAST_SEEN_PERSIST_EVERY_MS) this.touch(cluster);
  }

  acked(cluster: string, ack: Ack__Output): void {
    const result = ACK_RESULTS[ack.result];
    if (!result) {
      this.opts.logger.warn({ [LogFields.cluster]: cluster, result: ack.result }, 'ack without a result, ignored');
      return;
    }
    const rec = this.record(cluster);
    rec.lastSeenMs = this.now();
    const message =
      result === 'applied' ? '' : ack.message || `${ack.objectsFailed} of ${ack.objectsApplied + ack.objectsFailed} objects failed`;
    recordAttempt(rec, { digest: ack.digest, revision: ack.revision, result, message, atMs: this.now() });
    this.touch(cluster);
  }

  disconnected(cluster: string, session: string, _reason: string): void {
    const rec = this.records.get(cluster);
    // A replaced session reports after its successor connected: not a disconnect.
    if (!rec || rec.session !== session) return;
    rec.connected = false;
    rec.session = '';
    rec.lastSeenMs = this.now();
    this.touch(cluster);
  }

  /** Folds one agent event; throws ValidationError when its data is malformed. */
  foldEvent(kind: EventKind, event: FlotillaEvent): FoldOutcome {
    if (kind !== 'applied' && kind !== 'apply-failed') return 'ignored';
    const data = checkAppliedData(event.data);
    const atMs = Date.parse(event.time);
    const rec = this.record(event.flotillacluster);
    // Redelivered and late events are harmless: only a newer event changes the record.
    if (atMs < rec.lastEventMs) return 'stale';
    rec.lastEventMs = atMs;
    const result: ApplyResult = kind === 'apply-failed' && data.result === 'applied' ? 'failed' : data.result;
    const failures = data.bundles.flatMap((b) => b.failures ?? []).slice(0, 3);
    const message = result === 'applied' ? '' : data.message || failures.join('; ') || `apply ${result}`;
    recordAttempt(rec, { digest: data.digest, revision: data.revision, result, message, atMs });
    rec.bundles = bundleCounts(data.bundles);
    this.touch(rec.name);
    return 'folded';
  }

  /** All clusters matching selector (all when none), sorted by name. */
  list(selector?: Selector): ClusterStatus[] {
    const now = this.now();
    return [...this.records.values()]
      .filter((r) => !selector || selector.matches(r.labels))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((r) => viewOf(r, now, this.opts.offlineAfterMs));
  }

  /** One cluster's status, or undefined. */
  get(name: string): ClusterStatus | undefined {
    const rec = this.records.get(name);
    return rec ? viewOf(rec, this.now(), this.opts.offlineAfterMs) : undefined;
  }

  /** Copies of the records changed since the last call, for persistence. */
  takeDirty(): ClusterRecord[] {
    const out: ClusterRecord[] = [];
    for (const name of this.dirty) {
      const rec = this.records.get(name);
      if (!rec) continue;
      this.persistedSeen.set(name, rec.lastSeenMs);
      out.push(structuredClone(rec));
    }
    this.dirty.clear();
    return out;
  }

  /** Puts records back in the dirty set after a failed save. */
  markDirty(names: readonly string[]): void {
    for (const n of names) this.dirty.add(n);
  }
}
