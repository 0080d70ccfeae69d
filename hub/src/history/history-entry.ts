// How the history holds one entry, and what it costs. An entry is one fixed shape whose
// names, revisions, digests and bundle lists are shared across entries; its size is
// accounted from V8's layout of what it holds alone (its object, its time, its strings,
// its drift, its slots in the log's indexes), so the log's byte caps are the heap it
// really takes (history-entry.test.ts measures it against the heap).
import type { EventKind, FlotillaEvent } from '@flotilla/common';
import { readApplied, readDrift, readDropped, readHealth } from '../status/event-data.js';
import type { DriftedObject } from '../status/event-data.js';
import { isSessionKind, readSession } from '../status/session-events.js';
import { shared } from '../status/shared-strings.js';

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

// Names, revisions and digests come from the pool status records share them from
// (shared-strings.ts): bounded, and not accounted to entries; what an entry holds of its
// own (ids, messages, drift) is.
const intern = shared;

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

// V8's layout on 64-bit Node.js (no pointer compression): an object is a map, properties
// and elements pointers plus 8 bytes per field; a string has a 16-byte header; a number
// that is not a small integer (every time in ms) is a 16-byte box; everything is aligned
// to 8 bytes.
const WORD = 8;
const OBJECT_HEADER = 3 * WORD;
const align = (n: number): number => Math.ceil(n / WORD) * WORD;
/** Bytes of an object with `fields` own properties. */
const objectBytes = (fields: number): number => OBJECT_HEADER + fields * WORD;
/** Bytes of an array of n elements (the JSArray and its backing store). */
const arrayBytes = (n: number): number => (n === 0 ? 0 : objectBytes(1) + 2 * WORD + n * WORD);
// Latin-1 strings take a byte per character, others two.
const WIDE = /[^\u0000-\u00ff]/;
/** Bytes of a string held by one entry alone ("" is V8's own). */
function stringBytes(s: string): number {
  if (s.length === 0) return 0;
  return align(2 * WORD + (WIDE.test(s) ? 2 * s.length : s.length));
}
/**
 * Per entry beyond what it references: its object (StoredEntry's 13 fields), the boxed
 * time, and its slots in the log's indexes (the id set: ~3 words per id at its load
 * factor; the time-ordered and per-cluster lists: a word each, with room to grow).
 */
const ENTRY_BYTES = objectBytes(13) + 2 * WORD + 40 + 24;

/** Bytes of one drifted object as readDrift makes it, strings included (shared or not: a cap must not under-count). */
function driftBytes(d: DriftedObject): number {
  let n = objectBytes(6) + arrayBytes(d.fields.length) + arrayBytes(d.changedBy.length);
  n += stringBytes(d.kind) + stringBytes(d.namespace) + stringBytes(d.name);
  for (const f of d.fields) n += stringBytes(f);
  for (const c of d.changedBy) n += stringBytes(c);
  return n;
}

/** What an entry holds besides its common fields, by kind: a session, a rollout transition, its charts (applies), who did what (audit). */
type Extra = SessionInfo | NonNullable<HistoryEntry['rollout']> | readonly string[] | AuditInfo;

/**
 * How an entry is held: one fixed shape, shared strings and lists, no ISO time (made from
 * timeMs when a query returns it), the message of a session entry made when read.
 * 100,000 entries took 107 MiB as plain HistoryEntry objects and take ~25 MiB this way.
 */
export class StoredEntry {
  /** Bytes held by this entry alone (estimateBytes); 0 once removed from its cluster's list. */
  bytes: number;

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
    /** SessionInfo (connected, disconnected), the rollout (rollout), charts as "bundle\trepo\tname\tversion\tdigest" (applies), AuditInfo (audit). */
    readonly extra: Extra | undefined = undefined,
  ) {
    this.bytes = estimateBytes(this);
  }

  /** False once removed from its cluster's list (the time-ordered list drops it later). */
  get alive(): boolean {
    return this.bytes > 0;
  }

  /** Marks it removed and lets go of what it held. */
  release(): void {
    this.bytes = 0;
    this.message = '';
    this.drift = NO_DRIFT;
  }

  get session(): SessionInfo | undefined {
    return isSessionKind(this.kind as EventKind) ? (this.extra as SessionInfo) : undefined;
  }

  view(): HistoryEntry {
    const extra = this.extra;
    const session = this.session;
    return {
      id: this.id,
      time: new Date(this.timeMs).toISOString(),
      timeMs: this.timeMs,
      cluster: this.cluster,
      kind: this.kind,
      revision: this.revision,
      digest: this.digest,
      result: this.result,
      message: session ? sessionMessage(this.kind, session) : this.message,
      bundles: [...this.bundles],
      bundleDigests: [...this.bundleDigests],
      drift: this.drift.map((d) => ({ ...d, fields: [...d.fields], changedBy: [...d.changedBy] })),
      ...(session ? { session: { ...session } } : {}),
      ...(this.kind === 'rollout' && extra
        ? { rollout: { ...(extra as NonNullable<HistoryEntry['rollout']>) } }
        : {}),
      ...(Array.isArray(extra) && extra.length > 0
        ? { charts: (extra as readonly string[]).map(chartOf) }
        : {}),
      ...(this.kind === 'audit' && extra ? { audit: { ...(extra as AuditInfo) } } : {}),
    };
  }
}

// What an entry holds alone, in V8's bytes. Shared names, revisions, digests and lists
// (the pools above) are not counted: they are bounded by the pools, not by entries.
function estimateBytes(e: StoredEntry): number {
  let n = ENTRY_BYTES + stringBytes(e.id) + stringBytes(e.message);
  if (e.drift.length > 0) n += arrayBytes(e.drift.length);
  for (const d of e.drift) n += driftBytes(d);
  const x = e.extra;
  if (x === undefined || Array.isArray(x)) return n;
  if (e.kind === 'rollout') return n + objectBytes(4);
  if (e.kind === 'audit') return n + objectBytes(3);
  const s = x as SessionInfo;
  return n + objectBytes(4) + stringBytes(s.id) + stringBytes(s.reason);
}

// The plain-text line of a session entry, for readers of the plain fields (gRPC, the
// drift-style tables); made when read, not held by every entry.
function sessionMessage(kind: HistoryKind, s: SessionInfo): string {
  return kind === 'connected'
    ? `session ${s.id} started, agent ${s.agentVersion || 'unknown'}`
    : `session ${s.id} ended: ${s.reason || 'no reason given'}`;
}

/** A rollout transition as the history keeps it: result is the phase it went to. */
export function rolloutEntry(r: RolloutTransitionRecord): StoredEntry {
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
    { id: intern(r.rollout), from: intern(r.from), to: intern(r.to), stage: r.stage },
  );
}

/** A write action of the audit log as the history keeps it. */
export function auditEntry(r: AuditEntryRecord): StoredEntry {
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
    { actor: intern(r.actor), action: intern(r.action), target: intern(r.target) },
  );
}

function chartOf(line: string): HistoryChart {
  const [bundle = '', repo = '', name = '', version = '', digest = ''] = line.split('\t');
  return { bundle, repo, name, version, digest };
}

// A connected or disconnected event as the history keeps it.
function sessionEntry(kind: HistoryKind, e: FlotillaEvent, timeMs: number, cluster: string) {
  const d = readSession(e.data);
  const session: SessionInfo = {
    id: d.session,
    agentVersion: intern(d.agentVersion),
    reason: d.reason,
    hub: intern(d.hub),
  };
  return new StoredEntry(
    e.id,
    timeMs,
    cluster,
    kind,
    // What the agent said it ran when it connected; an end names no revision.
    kind === 'connected' ? intern(d.appliedRevision) : '',
    kind === 'connected' ? intern(d.appliedDigest) : '',
    '',
    '',
    NO_STRINGS,
    NO_STRINGS,
    NO_DRIFT,
    session,
  );
}

// Drifted objects of one event, their texts shared with earlier events' (the same object
// drifts again and again): the objects stay the entry's own, and are accounted in full.
function sharedDrift(objects: DriftedObject[]): readonly DriftedObject[] {
  if (objects.length === 0) return NO_DRIFT;
  return objects.map((o) => ({
    bundle: intern(o.bundle),
    kind: intern(o.kind),
    namespace: intern(o.namespace),
    name: intern(o.name),
    fields: o.fields.map(intern),
    changedBy: o.changedBy.map(intern),
  }));
}

/** An agent's or a session's event as the history keeps it; throws ValidationError for bad data. */
export function toEntry(kind: EventKind, e: FlotillaEvent): StoredEntry {
  const timeMs = Date.parse(e.time);
  const cluster = intern(e.flotillacluster);
  if (kind === 'applied' || kind === 'apply-failed') {
    const d = readApplied(e.data);
    const failures = d.bundles
      .flatMap((b) => b.failures ?? [])
      .slice(0, 3)
      .join('; ');
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
      intern(d.digest),
      intern(d.result),
      d.message ?? failures,
      internList(d.bundles.map((b) => b.name)),
      internList(d.bundles.map((b) => b.digest)),
      NO_DRIFT,
      charts.length > 0 ? charts : undefined,
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
    sharedDrift(d.objects),
  );
}
