// Readers for the data of drift and health events. The agent owns their schema
// (DriftDetectedData, DriftCorrectedData, HealthChangedData in common/src/events.ts:
// one object per drift event, changed fields as `changes[].path`, the field manager as
// `manager`). These normalize it, and also accept a list of objects and a few
// alternative names, so a slightly different event still folds instead of being
// dropped. Anything without the essentials is a ValidationError.
// They are the hub's edge for events: every text, name and list is bounded here
// (EVENT_LIMITS), the excess cut and reported to the caller's CutListener, so nothing
// one agent sends can grow a status record or the history beyond those limits.
import type { AppliedData, BundleApplyResult, BundleChart, BundleWaiting } from '@flotilla/common';
import { EVENT_LIMITS, ValidationError, clipText, isDnsLabel } from '@flotilla/common';

/** One drifted object as the hub keeps it. */
export interface DriftedObject {
  bundle: string;
  kind: string;
  namespace: string;
  name: string;
  /** JSON pointers of the fields that differ. */
  fields: string[];
  /** Field managers that changed the object, when the agent could tell. */
  changedBy: string[];
}

/** data of drift-detected and drift-corrected, normalized. */
export interface DriftFacts {
  revision: string;
  objects: DriftedObject[];
  /** Bundles the event is about (from its objects, or its own bundle field). */
  bundles: string[];
}

/** data of health-changed, normalized. */
export interface HealthFacts {
  bundle: string;
  /** Ready, Progressing, Degraded or Failed. */
  health: string;
  message: string;
  /** The first reason the health is not Ready ("" when none was given). */
  reason: string;
  /** Commit the health is about ("" when the event does not say). */
  revision: string;
  /** Desired-state digest the health is about ("" from agents that predate it). */
  digest: string;
}

type Obj = Record<string, unknown>;

/** Told what was cut of an event's data ("health.reason", "drift.fields", ...); the hub counts it. */
export type CutListener = (field: string) => void;

const NO_CUT: CutListener = () => undefined;
const L = EVENT_LIMITS;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const strs = (v: unknown): string[] =>
  Array.isArray(v)
    ? v.filter((x): x is string => typeof x === 'string')
    : typeof v === 'string' && v !== ''
      ? [v]
      : [];

function text(v: unknown, max: number, field: string, cut: CutListener): string {
  const s = str(v);
  if (s.length <= max) return s;
  cut(field);
  return clipText(s, max);
}

function first<T>(items: readonly T[], max: number, field: string, cut: CutListener): T[] {
  if (items.length <= max) return items as T[];
  cut(field);
  return items.slice(0, max);
}

function texts(v: unknown, maxItems: number, maxChars: number, field: string, cut: CutListener) {
  return first(strs(v), maxItems, field, cut).map((t) => text(t, maxChars, field, cut));
}

// Bundle names repeat in every event: each distinct valid one is checked once.
const validNames = new Set<string>();
function isBundleName(name: string): boolean {
  if (validNames.has(name)) return true;
  if (!isDnsLabel(name)) return false;
  if (validNames.size >= 10_000) validNames.clear();
  validNames.add(name);
  return true;
}

// A bundle name must be one the fleet repo allows (a DNS label); anything else names no bundle.
function bundleName(v: unknown, field: string, cut: CutListener): string {
  const name = str(v);
  if (name === '' || isBundleName(name)) return name;
  cut(field);
  return '';
}

function readObject(o: Obj, fallbackBundle: string, cut: CutListener): DriftedObject {
  const ref = (o.object && typeof o.object === 'object' ? o.object : o) as Obj;
  const changes = Array.isArray(o.changes)
    ? first(o.changes as unknown[], L.fields, 'drift.fields', cut)
        .map((c) => text((c as Obj | null)?.path, L.textChars, 'drift.path', cut))
        .filter((p) => p !== '')
    : undefined;
  const fields = changes ?? texts(o.fields ?? o.paths, L.fields, L.textChars, 'drift.fields', cut);
  return {
    bundle: bundleName(o.bundle, 'drift.bundle', cut) || fallbackBundle,
    kind: text(ref.kind, L.nameChars, 'drift.object', cut),
    namespace: text(ref.namespace, L.nameChars, 'drift.object', cut),
    name: text(ref.name, L.nameChars, 'drift.object', cut),
    fields: o.deleted === true ? ['<deleted>', ...fields] : fields,
    changedBy: texts(
      o.changedBy ?? o.managers ?? o.manager,
      L.managers,
      L.tokenChars,
      'drift.manager',
      cut,
    ),
  };
}

/** Identity of a drifted object within its bundle: "Kind/namespace/name". */
export function objectKeyOf(o: DriftedObject): string {
  return `${o.kind}/${o.namespace}/${o.name}`;
}

/** Normalizes a drift event's data, bounded; throws ValidationError when it names no bundle. */
export function readDrift(data: unknown, cut: CutListener = NO_CUT): DriftFacts {
  const d = data as Obj;
  const bundle = bundleName(d.bundle, 'drift.bundle', cut);
  const list = d.objects ?? d.drifted;
  if (list !== undefined && !Array.isArray(list))
    throw new ValidationError('drift event: objects must be a list');
  // The agent's schema: one object per event, at data.object.
  const single = d.object && typeof d.object === 'object' ? [d] : [];
  const all = [...single, ...((list as unknown[] | undefined) ?? [])];
  const objects = first(all, L.objects, 'drift.objects', cut)
    .filter((o): o is Obj => !!o && typeof o === 'object')
    .map((o) => readObject(o, bundle, cut));
  const bundles = [
    ...new Set([
      ...(bundle ? [bundle] : []),
      ...objects.map((o) => o.bundle).filter((b) => b !== ''),
    ]),
  ].sort();
  if (bundles.length === 0)
    throw new ValidationError('drift event names no bundle (data.bundle or objects[].bundle)');
  return { revision: text(d.revision, L.tokenChars, 'drift.revision', cut), objects, bundles };
}

/** Normalizes a health event's data, bounded; throws ValidationError without a bundle or health. */
export function readHealth(data: unknown, cut: CutListener = NO_CUT): HealthFacts {
  const d = data as Obj;
  const bundle = bundleName(d.bundle, 'health.bundle', cut);
  const health = text(str(d.health) || str(d.state) || str(d.status), 32, 'health.state', cut);
  if (!bundle) throw new ValidationError('health event names no valid bundle (data.bundle)');
  if (!health) throw new ValidationError('health event has no health (data.health)');
  const reasons = texts(d.reasons, L.texts, L.textChars, 'health.reason', cut);
  return {
    bundle,
    health,
    message:
      text(d.message, L.textChars, 'health.message', cut) ||
      clipText(reasons.slice(0, 3).join('; '), L.textChars),
    reason: reasons[0] ?? text(d.message, L.textChars, 'health.message', NO_CUT),
    revision: text(d.revision, L.tokenChars, 'health.revision', cut),
    digest: text(d.digest, L.tokenChars, 'health.digest', cut),
  };
}

function count(v: unknown, cut: CutListener): number {
  if (v === undefined) return 0;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= L.count) return v;
  cut('applied.count');
  return typeof v === 'number' && v > L.count ? L.count : 0;
}

const isCount = (v: unknown): boolean =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= L.count;

// The hot path (every applied event, read by the history and the model): plain checks,
// no allocation.
function bundleFits(b: unknown): boolean {
  if (!b || typeof b !== 'object') return false;
  const r = b as BundleApplyResult;
  if (typeof r.name !== 'string' || !isBundleName(r.name)) return false;
  if (typeof r.digest !== 'string' || r.digest.length > L.tokenChars) return false;
  if (!isCount(r.created) || !isCount(r.configured) || !isCount(r.unchanged)) return false;
  if (!isCount(r.deleted) || !isCount(r.failed)) return false;
  const f = r.failures as unknown;
  if (!Array.isArray(f) || f.length > L.texts) return false;
  for (const x of f) if (typeof x !== 'string' || x.length > L.textChars) return false;
  return waitingFits(r.waiting) && chartFits(r.chart);
}

const CHART_FIELDS = ['repo', 'name', 'version', 'digest'] as const;

// A chart is four short texts; anything else is read (bounded) by readChart.
function chartFits(c: unknown): boolean {
  if (c === undefined) return true;
  if (!c || typeof c !== 'object') return false;
  const o = c as Obj;
  return CHART_FIELDS.every(
    (k) => typeof o[k] === 'string' && (o[k] as string).length <= L.textChars,
  );
}

// A bundle's chart, bounded; nothing when absent or not an object.
function readChart(c: unknown, cut: CutListener): { chart?: BundleChart } {
  if (!c || typeof c !== 'object') return {};
  const o = c as Obj;
  const [repo, name, version, digest] = CHART_FIELDS.map((k) =>
    text(o[k], L.textChars, 'applied.chart', cut),
  ) as [string, string, string, string];
  return { chart: { repo, name, version, digest } };
}

// A copy of a bundle result within bounds, or undefined when it names no valid bundle.
function readBundle(b: unknown, cut: CutListener): BundleApplyResult | undefined {
  if (!b || typeof b !== 'object') return undefined;
  const r = b as BundleApplyResult;
  if (!bundleName(r.name, 'applied.bundle', cut)) return undefined;
  const failures = Array.isArray(r.failures) ? r.failures : [];
  return {
    name: r.name,
    digest: text(r.digest, L.tokenChars, 'applied.digest', cut),
    created: count(r.created, cut),
    configured: count(r.configured, cut),
    unchanged: count(r.unchanged, cut),
    deleted: count(r.deleted, cut),
    failed: count(r.failed, cut),
    failures: texts(failures, L.texts, L.textChars, 'applied.failure', cut),
    ...readWaiting(r.waiting, cut),
    ...readChart(r.chart, cut),
  };
}

// A bundle's wait (dependsOn, a Helm hook), bounded; nothing when absent or not an object.
function readWaiting(w: unknown, cut: CutListener): { waiting?: BundleWaiting } {
  if (!w || typeof w !== 'object') return {};
  const o = w as Obj;
  return {
    waiting: {
      for: text(o.for, L.textChars, 'applied.waiting', cut),
      reason: text(o.reason, L.textChars, 'applied.waiting', cut),
    },
  };
}

const waitingFits = (w: unknown): boolean => {
  if (w === undefined) return true;
  const o = w as Partial<BundleWaiting> | null;
  return (
    !!o &&
    typeof o.for === 'string' &&
    o.for.length <= L.textChars &&
    typeof o.reason === 'string' &&
    o.reason.length <= L.textChars
  );
};

/**
 * Checks and bounds the data of applied and apply-failed; throws ValidationError without
 * digest and revision strings, a valid result and a bundles list.
 */
export function readApplied(data: unknown, cut: CutListener = NO_CUT): AppliedData {
  const d = data as Partial<AppliedData>;
  if (typeof d.digest !== 'string' || typeof d.revision !== 'string') {
    throw new ValidationError('applied event data needs digest and revision strings');
  }
  // waiting: nothing failed, some bundle waits for a dependency or a Helm hook.
  if (!['applied', 'partial', 'failed', 'waiting'].includes(d.result as string)) {
    throw new ValidationError(
      `applied event has an invalid result ${JSON.stringify(clipText(String(d.result), 40))}`,
    );
  }
  if (!Array.isArray(d.bundles))
    throw new ValidationError('applied event data needs a bundles list');
  const fits =
    d.bundles.length <= L.bundles &&
    d.digest.length <= L.tokenChars &&
    d.revision.length <= L.tokenChars &&
    (d.message === undefined || (typeof d.message === 'string' && d.message.length <= L.textChars));
  if (fits && d.bundles.every(bundleFits)) return d as AppliedData;
  const bundles: BundleApplyResult[] = [];
  for (const b of first(d.bundles as unknown[], L.bundles, 'applied.bundles', cut)) {
    const r = bundleFits(b) ? (b as BundleApplyResult) : readBundle(b, cut);
    if (r) bundles.push(r);
  }
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    generation: num(d.generation),
    result: d.result as AppliedData['result'],
    durationMs: num(d.durationMs),
    digest: text(d.digest, L.tokenChars, 'applied.digest', cut),
    revision: text(d.revision, L.tokenChars, 'applied.revision', cut),
    bundles,
    ...(d.message === undefined
      ? {}
      : { message: text(d.message, L.textChars, 'applied.message', cut) }),
  };
}

/** data of events-dropped, normalized: how many events the agent's full buffer dropped. */
export interface DroppedFacts {
  /** Since its last report. */
  dropped: number;
  /** Since its buffer was created. */
  total: number;
  /** The buffer's bound in events. */
  capacity: number;
  /** What status and history say. */
  message: string;
}

/** Reads events-dropped data; a ValidationError without a valid count. */
export function readDropped(data: unknown): DroppedFacts {
  const d = (data ?? {}) as Obj;
  if (!isCount(d.dropped) || (d.dropped as number) === 0)
    throw new ValidationError('events-dropped event has no valid count of dropped events');
  const dropped = d.dropped as number;
  const total = isCount(d.total) ? Math.max(d.total as number, dropped) : dropped;
  const capacity = isCount(d.capacity) ? (d.capacity as number) : 0;
  return {
    dropped,
    total,
    capacity,
    message: `the agent dropped ${dropped} event${dropped === 1 ? '' : 's'} (${total} in all): its buffer${capacity > 0 ? ` of ${capacity} events` : ''} was full while NATS was unavailable, so status and history miss them`,
  };
}
