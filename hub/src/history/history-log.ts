// The event log behind "what happened": every agent event the hub receives, and every
// agent session start and end the hubs recorded (session-events.ts), kept for
// the retention window, queryable by cluster, bundle, revision, bundle digest, kind
// and time. It lives in memory and is rebuilt at start by replaying FLOTILLA_EVENTS
// (which JetStream keeps for at least as long), so no second store must be kept in step.
// It is bounded in bytes per cluster and in all, not only in entries: each event's data
// is bounded by the readers (event-data.ts), and a cluster over its budget loses its own
// oldest entries, never another cluster's.
import type { EventKind, FlotillaEvent } from '@flotilla/common';
import { readApplied, readDrift, readDropped, readHealth } from '../status/event-data.js';
import type { DriftedObject } from '../status/event-data.js';
import { isSessionKind, readSession } from '../status/session-events.js';
import type { SessionEventKind } from '../status/session-events.js';

/** What a history entry is about: an agent or session event, a rollout transition, or a write (audit). */
export type HistoryKind = EventKind | 'rollout' | 'audit';

/** Who did what to what, on an audit entry: never a secret. */
export interface AuditInfo {
  /** "admin alice", "token ci", or what was presented when it was refused. */
  actor: string;
  /** e.g. cluster.add, token.revoke, admin.add, rollout.approve. */
  action: string;
  /** The cluster, token, person or bundle acted on. */
  target: string;
}

/** A write action as the audit log records it (AuditRecord of audit/audit-log.ts). */
export interface AuditEntryRecord extends AuditInfo {
  id: string;
  atMs: number;
  /** ok, denied or failed. */
  result: string;
  message: string;
}

/** A rollout transition as history shows it (HistoryRecord of rollout/bundle-state.ts). */
export interface RolloutTransitionRecord {
  id: string;
  atMs: number;
  /** "" for the rollout itself. */
  cluster: string;
  bundle: string;
  rollout: string;
  revision: string;
  /** Stage index; -1 when not about a stage. */
  stage: number;
  from: string;
  to: string;
  message: string;
}

/** One event as the history keeps it. */
export interface HistoryEntry {
  id: string;
  /** ISO time of the event. */
  time: string;
  timeMs: number;
  /** The cluster; "" for a rollout transition of the rollout itself. */
  cluster: string;
  kind: HistoryKind;
  revision: string;
  digest: string;
  /** applied | partial | failed for applies; the health for health-changed; "" otherwise. */
  result: string;
  message: string;
  /** Bundles the event is about. */
  bundles: string[];
  /** Digests of those bundles, for applies (empty otherwise). */
  bundleDigests: string[];
  drift: DriftedObject[];
  /** For connected and disconnected: the session, its agent version and why it ended. */
  session?: SessionInfo;
  /** For rollout transitions: the rollout, what changed and the stage (-1: none). */
  rollout?: { id: string; from: string; to: string; stage: number };
  /** For applies: the remote Helm chart each bundle was rendered from (only bundles that have one). */
  charts?: HistoryChart[];
  /** For audit entries: who did what to what. */
  audit?: AuditInfo;
}

/** The chart version an applied bundle came from. */
export interface HistoryChart {
  bundle: string;
  /** Repository URL or oci:// reference. */
  repo: string;
  name: string;
  version: string;
  digest: string;
}

/** The session a connected or disconnected entry is about. */
export interface SessionInfo {
  id: string;
  agentVersion: string;
  /** Why the session ended ("" for connected). */
  reason: string;
  /** The hub that served it. */
  hub: string;
}

/** Filters of a history query; all optional, combined with AND. */
export interface HistoryQuery {
  cluster?: string | undefined;
  bundle?: string | undefined;
  /** Applied revision (a prefix of 7+ characters matches). */
  revision?: string | undefined;
  bundleDigest?: string | undefined;
  kinds?: readonly HistoryKind[] | undefined;
  sinceMs?: number | undefined;
  untilMs?: number | undefined;
  /** Newest first, at most this many (default HISTORY_DEFAULT_LIMIT). */
  limit?: number | undefined;
  /** Only entries whose cluster this accepts (a token limited by a selector); entries of no cluster ask with "". */
  clusterVisible?: ((cluster: string) => boolean) | undefined;
}

/** Entries a query returns when it sets no limit (1,000). */
export const HISTORY_DEFAULT_LIMIT = 1_000;
/** Entries kept at most, whatever the retention, to bound memory (250,000 ≈ 100 MiB). */
export const HISTORY_MAX_ENTRIES = 250_000;
/**
 * Estimated bytes of entries kept per cluster at most (8 MiB, about 25,000 ordinary
 * entries): a cluster flooding the hub pushes out only its own oldest entries.
 */
export const HISTORY_MAX_CLUSTER_BYTES = 8 * 1024 * 1024;
/** Estimated bytes of entries kept in all at most (256 MiB), whatever the retention. */
export const HISTORY_MAX_BYTES = 256 * 1024 * 1024;

/** Options of HistoryLog. */
export interface HistoryLogOptions {
  /** How long entries are kept (config history.retention). */
  retentionMs: number;
  maxEntries?: number;
  /** Default HISTORY_MAX_CLUSTER_BYTES. */
  maxClusterBytes?: number;
  /** Default HISTORY_MAX_BYTES. */
  maxBytes?: number;
  now?: () => number;
}

// Names, revisions and digests repeat across thousands of entries; JSON.parse makes a
// new string each time. Sharing one copy keeps the log's memory to what is distinct.
const pool = new Map<string, string>();
function intern(s: string): string {
  const known = pool.get(s);
  if (known !== undefined) return known;
  if (pool.size > 100_000) pool.clear();
  pool.set(s, s);
  return s;
}

// Every apply of a revision lists the same bundles (and mostly the same digests) on
// every cluster: one shared, frozen list per distinct content instead of one per event.
const lists = new Map<string, readonly string[]>();
const NO_STRINGS: readonly string[] = Object.freeze([]);
const NO_DRIFT: readonly DriftedObject[] = Object.freeze([]);
function internList(items: readonly string[]): readonly string[] {
  if (items.length === 0) return NO_STRINGS;
  const key = items.join('\n');
  const known = lists.get(key);
  if (known !== undefined) return known;
  if (lists.size > 20_000) lists.clear();
  const list = Object.freeze(items.map(intern));
  lists.set(key, list);
  return list;
}

// How an entry is held: one fixed shape, shared strings and lists, no ISO time (made
// from timeMs when a query returns it). 100,000 entries took 107 MiB as plain
// HistoryEntry objects and take about a fifth of that this way.
class StoredEntry {
  /** Estimated bytes held by this entry alone (shared strings and lists not counted). */
  readonly bytes: number;
  /** False once removed from its cluster's list (the time-ordered list drops it later). */
  alive = true;

  constructor(
    readonly id: string,
    readonly timeMs: number,
    readonly cluster: string,
    readonly kind: HistoryKind,
    readonly revision: string,
    readonly digest: string,
    readonly result: string,
    public message: string,
    readonly bundles: readonly string[],
    readonly bundleDigests: readonly string[],
    public drift: readonly DriftedObject[],
    readonly session: SessionInfo | undefined = undefined,
    readonly rollout: HistoryEntry['rollout'] = undefined,
    /** "bundle\trepo\tname\tversion\tdigest" per bundle with a remote chart (shared lists). */
    readonly charts: readonly string[] = NO_STRINGS,
    readonly audit: AuditInfo | undefined = undefined,
  ) {
    this.bytes = estimateBytes(this);
  }

  /** Marks it removed and lets go of what it held. */
  release(): void {
    this.alive = false;
    this.message = '';
    this.drift = NO_DRIFT;
  }

  view(): HistoryEntry {
    return {
      id: this.id,
      time: new Date(this.timeMs).toISOString(),
      timeMs: this.timeMs,
      cluster: this.cluster,
      kind: this.kind,
      revision: this.revision,
      digest: this.digest,
      result: this.result,
      message: this.message,
      bundles: [...this.bundles],
      bundleDigests: [...this.bundleDigests],
      drift: this.drift.map((d) => ({ ...d, fields: [...d.fields], changedBy: [...d.changedBy] })),
      ...(this.session ? { session: { ...this.session } } : {}),
      ...(this.rollout ? { rollout: { ...this.rollout } } : {}),
      ...(this.charts.length > 0 ? { charts: this.charts.map(chartOf) } : {}),
      ...(this.audit ? { audit: { ...this.audit } } : {}),
    };
  }
}

// A rollout transition as the history keeps it: result is the phase it went to.
function rolloutEntry(r: RolloutTransitionRecord): StoredEntry {
  return new StoredEntry(
    r.id,
    r.atMs,
    intern(r.cluster),
    'rollout',
    intern(r.revision),
    '',
    intern(r.to),
    r.message,
    internList([r.bundle]),
    NO_STRINGS,
    NO_DRIFT,
    undefined,
    { id: intern(r.rollout), from: intern(r.from), to: intern(r.to), stage: r.stage },
  );
}

function auditEntry(r: AuditEntryRecord): StoredEntry {
  return new StoredEntry(
    r.id,
    r.atMs,
    '',
    'audit',
    '',
    '',
    intern(r.result),
    r.message,
    r.action.startsWith('rollout.') ? internList([r.target]) : NO_STRINGS,
    NO_STRINGS,
    NO_DRIFT,
    undefined,
    undefined,
    NO_STRINGS,
    { actor: intern(r.actor), action: intern(r.action), target: intern(r.target) },
  );
}

function chartOf(line: string): HistoryChart {
  const [bundle = '', repo = '', name = '', version = '', digest = ''] = line.split('\t');
  return { bundle, repo, name, version, digest };
}

// What an entry holds beyond the shared strings: its object, its id and texts. A rough
// figure (characters, not bytes of the heap), enough to keep memory in proportion.
const ENTRY_BYTES = 160;
function estimateBytes(e: StoredEntry): number {
  let n = ENTRY_BYTES + e.id.length + e.message.length;
  for (const d of e.drift) {
    n += 64 + d.bundle.length + d.kind.length + d.namespace.length + d.name.length;
    for (const f of d.fields) n += 16 + f.length;
    for (const c of d.changedBy) n += 16 + c.length;
  }
  if (e.session) n += 64 + e.session.id.length + e.session.reason.length;
  if (e.rollout) n += 48;
  if (e.audit) n += 48 + e.audit.actor.length + e.audit.target.length;
  return n;
}

// A connected or disconnected event as the history keeps it.
function sessionEntry(
  kind: SessionEventKind,
  e: FlotillaEvent,
  timeMs: number,
  cluster: string,
): StoredEntry {
  const d = readSession(e.data);
  const session = {
    id: d.session,
    agentVersion: intern(d.agentVersion),
    reason: d.reason,
    hub: intern(d.hub),
  };
  // The message says it all for readers of the plain fields (gRPC, the drift-style tables).
  const message =
    kind === 'connected'
      ? `session ${d.session} started, agent ${d.agentVersion || 'unknown'}`
      : `session ${d.session} ended: ${d.reason || 'no reason given'}`;
  return new StoredEntry(
    e.id,
    timeMs,
    cluster,
    kind,
    // What the agent said it ran when it connected; an end names no revision.
    kind === 'connected' ? intern(d.appliedRevision) : '',
    kind === 'connected' ? intern(d.appliedDigest) : '',
    '',
    message,
    NO_STRINGS,
    NO_STRINGS,
    NO_DRIFT,
    session,
  );
}

function toEntry(kind: EventKind, e: FlotillaEvent): StoredEntry {
  const timeMs = Date.parse(e.time);
  const cluster = intern(e.flotillacluster);
  if (kind === 'applied' || kind === 'apply-failed') {
    const d = readApplied(e.data);
    const failures = d.bundles
      .flatMap((b) => b.failures ?? [])
      .slice(0, 3)
      .join('; ');
    const digest = intern(d.digest);
    const result = intern(d.result);
    const names = internList(d.bundles.map((b) => b.name));
    const digests = internList(d.bundles.map((b) => b.digest));
    const charts = internList(
      d.bundles.flatMap((b) =>
        b.chart
          ? [[b.name, b.chart.repo, b.chart.name, b.chart.version, b.chart.digest].join('\t')]
          : [],
      ),
    );
    return new StoredEntry(
      e.id,
      timeMs,
      cluster,
      kind,
      intern(d.revision),
      digest,
      result,
      d.message ?? failures,
      names,
      digests,
      NO_DRIFT,
      undefined,
      undefined,
      charts,
    );
  }
  if (isSessionKind(kind)) return sessionEntry(kind, e, timeMs, cluster);
  if (kind === 'events-dropped') {
    const d = readDropped(e.data);
    return new StoredEntry(
      e.id,
      timeMs,
      cluster,
      kind,
      '',
      '',
      '',
      d.message,
      NO_STRINGS,
      NO_STRINGS,
      NO_DRIFT,
    );
  }
  if (kind === 'health-changed') {
    const h = readHealth(e.data);
    return new StoredEntry(
      e.id,
      timeMs,
      cluster,
      kind,
      '',
      '',
      intern(h.health),
      h.message,
      internList([h.bundle]),
      NO_STRINGS,
      NO_DRIFT,
    );
  }
  const d = readDrift(e.data);
  return new StoredEntry(
    e.id,
    timeMs,
    cluster,
    kind,
    intern(d.revision),
    '',
    '',
    '',
    internList(d.bundles),
    NO_STRINGS,
    d.objects.length > 0 ? d.objects : NO_DRIFT,
  );
}

function matches(e: StoredEntry, q: HistoryQuery): boolean {
  if (q.cluster && e.cluster !== q.cluster) return false;
  if (q.bundle && !e.bundles.includes(q.bundle)) return false;
  if (q.revision && !(q.revision.length >= 7 && e.revision.startsWith(q.revision))) return false;
  if (q.bundleDigest && !e.bundleDigests.includes(q.bundleDigest)) return false;
  if (q.kinds && q.kinds.length > 0 && !q.kinds.includes(e.kind)) return false;
  if (q.clusterVisible && !q.clusterVisible(e.cluster)) return false;
  return true;
}

// Appends when in order (the common case); otherwise finds the place by binary search,
// after every entry of the same time (ties keep arrival order). A linear walk back from
// the end cost O(n) per late event: events from agents with skewed clocks, or buffered
// while NATS was away, arrive seconds behind tens of thousands of newer ones, and the
// walk was half of the fleet benchmark's ingest time (integration-tests fleet-bench).
function insertSorted(list: StoredEntry[], entry: StoredEntry): void {
  const last = list[list.length - 1];
  if (!last || last.timeMs <= entry.timeMs) {
    list.push(entry);
    return;
  }
  let lo = 0;
  let hi = list.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] as StoredEntry).timeMs <= entry.timeMs) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, entry);
}

/** The in-memory event log. */
export class HistoryLog {
  // Sorted by time (ties by arrival); events mostly arrive in order, so inserts are appends.
  // It may hold released entries (alive false) until the next compact().
  private entries: StoredEntry[] = [];
  // The live entries per cluster, same order: most queries name a cluster.
  private readonly byCluster = new Map<string, StoredEntry[]>();
  private readonly clusterBytes = new Map<string, number>();
  private readonly ids = new Set<string>();
  private readonly now: () => number;
  private bytes = 0;
  private released = 0;

  constructor(private readonly opts: HistoryLogOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Number of entries held. */
  get size(): number {
    return this.entries.length - this.released;
  }

  /** Estimated bytes held by the entries of one cluster (all clusters without one). */
  bytesOf(cluster?: string): number {
    return cluster === undefined ? this.bytes : (this.clusterBytes.get(cluster) ?? 0);
  }

  /** Adds an event; returns false for a duplicate or one older than the retention. Throws ValidationError for bad data. */
  add(kind: EventKind, event: FlotillaEvent): boolean {
    if (this.ids.has(event.id)) return false;
    return this.insert(toEntry(kind, event));
  }

  /** Adds a rollout transition; returns false for a duplicate or one older than the retention. */
  addRollout(record: RolloutTransitionRecord): boolean {
    if (this.ids.has(record.id)) return false;
    return this.insert(rolloutEntry(record));
  }

  /** Adds a write action of the audit log (once per id). */
  addAudit(record: AuditEntryRecord): boolean {
    if (this.ids.has(record.id)) return false;
    return this.insert(auditEntry(record));
  }

  private insert(entry: StoredEntry): boolean {
    if (entry.timeMs < this.now() - this.opts.retentionMs) return false;
    this.ids.add(entry.id);
    insertSorted(this.entries, entry);
    let list = this.byCluster.get(entry.cluster);
    if (!list) {
      list = [];
      this.byCluster.set(entry.cluster, list);
    }
    insertSorted(list, entry);
    this.bytes += entry.bytes;
    const clusterBytes = (this.clusterBytes.get(entry.cluster) ?? 0) + entry.bytes;
    this.clusterBytes.set(entry.cluster, clusterBytes);
    if (clusterBytes > (this.opts.maxClusterBytes ?? HISTORY_MAX_CLUSTER_BYTES))
      this.trimCluster(entry.cluster, list);
    const max = this.opts.maxEntries ?? HISTORY_MAX_ENTRIES;
    // Dropping in chunks of 1 % keeps the cost of a full log off every single add.
    if (this.size > max) this.trimLargest(Math.ceil(max / 100), 0);
    const maxBytes = this.opts.maxBytes ?? HISTORY_MAX_BYTES;
    while (this.bytes > maxBytes && this.size > 0)
      this.trimLargest(0, this.bytes - maxBytes + Math.ceil(maxBytes / 100));
    return true;
  }

  // Over a fleet-wide cap, the cluster holding the most (bytes, or entries) gives up its
  // own oldest entries: a flood from one cluster never pushes another's history out, even
  // when the whole log is full.
  private trimLargest(entriesToFree: number, bytesToFree: number): void {
    let largest: string | undefined;
    let most = -1;
    for (const [cluster, list] of this.byCluster) {
      const held = bytesToFree > 0 ? (this.clusterBytes.get(cluster) ?? 0) : list.length;
      if (held > most) [largest, most] = [cluster, held];
    }
    const list = largest === undefined ? undefined : this.byCluster.get(largest);
    if (largest === undefined || !list) return;
    let n = 0;
    let freed = 0;
    while (n < list.length && (n < entriesToFree || freed < bytesToFree))
      freed += this.forget(list[n++] as StoredEntry);
    list.splice(0, n);
    if (list.length === 0) {
      this.byCluster.delete(largest);
      this.clusterBytes.delete(largest);
    } else this.clusterBytes.set(largest, (this.clusterBytes.get(largest) ?? 0) - freed);
    this.compactReleased();
  }

  // A cluster over its budget loses its own oldest entries, down to 90 % of the budget so
  // the next adds do not trim again one by one.
  private trimCluster(cluster: string, list: StoredEntry[]): void {
    const target = 0.9 * (this.opts.maxClusterBytes ?? HISTORY_MAX_CLUSTER_BYTES);
    let bytes = this.clusterBytes.get(cluster) ?? 0;
    let n = 0;
    while (n < list.length - 1 && bytes > target) bytes -= this.forget(list[n++] as StoredEntry);
    list.splice(0, n);
    this.clusterBytes.set(cluster, bytes);
    this.compactReleased();
  }

  // The time-ordered list lets go of released entries in one pass now and then.
  private compactReleased(): void {
    if (this.released > Math.max(1_000, this.entries.length / 8)) {
      this.entries = this.entries.filter((e) => e.alive);
      this.released = 0;
    }
  }

  // Releases one entry: its id, its bytes; returns the bytes.
  private forget(e: StoredEntry): number {
    this.ids.delete(e.id);
    this.bytes -= e.bytes;
    this.released++;
    e.release();
    return e.bytes;
  }

  private drop(n: number): void {
    for (const e of this.entries.slice(0, n)) {
      if (!e.alive) {
        this.released--;
        continue;
      }
      this.ids.delete(e.id);
      this.bytes -= e.bytes;
      const list = this.byCluster.get(e.cluster);
      const i = list ? list.indexOf(e) : -1;
      if (list && i >= 0) list.splice(i, 1);
      const left = (this.clusterBytes.get(e.cluster) ?? 0) - e.bytes;
      if (list && list.length === 0) {
        this.byCluster.delete(e.cluster);
        this.clusterBytes.delete(e.cluster);
      } else this.clusterBytes.set(e.cluster, left);
    }
    this.entries = this.entries.slice(n);
  }

  /** Removes entries older than the retention; run periodically. */
  prune(): void {
    const cutoff = this.now() - this.opts.retentionMs;
    let n = 0;
    while (n < this.entries.length && (this.entries[n] as StoredEntry).timeMs < cutoff) n++;
    if (n > 0) this.drop(n);
  }

  /** Matching entries, newest first. */
  query(q: HistoryQuery = {}): HistoryEntry[] {
    const limit = q.limit && q.limit > 0 ? q.limit : HISTORY_DEFAULT_LIMIT;
    const out: HistoryEntry[] = [];
    const entries = q.cluster ? (this.byCluster.get(q.cluster) ?? []) : this.entries;
    for (let i = entries.length - 1; i >= 0 && out.length < limit; i--) {
      const e = entries[i] as StoredEntry;
      if (!e.alive) continue;
      if (q.untilMs !== undefined && e.timeMs > q.untilMs) continue;
      if (q.sinceMs !== undefined && e.timeMs < q.sinceMs) break;
      if (matches(e, q)) out.push(e.view());
    }
    return out;
  }
}
