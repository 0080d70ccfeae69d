// The event log behind "what happened": every agent event the hub receives, and every
// agent session start and end the hubs recorded (session-events.ts), kept for
// the retention window, queryable by cluster, bundle, revision, bundle digest, kind
// and time. It lives in memory and is rebuilt at start by replaying FLOTILLA_EVENTS
// (which JetStream keeps for at least as long), so no second store must be kept in step.
// It is bounded in bytes per cluster and in all, not only in entries: each event's data
// is bounded by the readers (event-data.ts), and a cluster over its budget loses its own
// oldest entries, never another cluster's. The bytes are the heap the entries take
// (history-entry.ts), within the factor history-entry.test.ts checks.
import type { EventKind, FlotillaEvent } from '@flotilla/common';
import { auditEntry, rolloutEntry, toEntry } from './history-entry.js';
import type {
  AuditEntryRecord,
  HistoryEntry,
  HistoryKind,
  RolloutTransitionRecord,
  StoredEntry,
} from './history-entry.js';

export type {
  AuditEntryRecord,
  AuditInfo,
  HistoryChart,
  HistoryEntry,
  HistoryKind,
  RolloutTransitionRecord,
  SessionInfo,
} from './history-entry.js';

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
/** Entries kept at most, whatever the retention, to bound memory (250,000 ≈ 80 MiB of heap). */
export const HISTORY_MAX_ENTRIES = 250_000;
/**
 * Bytes of heap of entries kept per cluster at most (8 MiB, about 25,000 ordinary
 * entries): a cluster flooding the hub pushes out only its own oldest entries.
 */
export const HISTORY_MAX_CLUSTER_BYTES = 8 * 1024 * 1024;
/** Bytes of heap of entries kept in all at most (256 MiB), whatever the retention. */
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

  /** Heap bytes held by the entries of one cluster (all clusters without one), as history-entry.ts accounts them. */
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
    const bytes = e.bytes;
    this.ids.delete(e.id);
    this.bytes -= bytes;
    this.released++;
    e.release();
    return bytes;
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
