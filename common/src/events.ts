// The event schema agents publish to NATS JetStream: CloudEvents 1.0 in JSON. This
// schema is an invariant: types and data fields are only ever added.
import { randomUUID } from 'node:crypto';
import { ValidationError } from './errors.js';
import { EVENT_LIMITS } from './event-limits.js';
import type { BundleChart } from './desired-state.js';
import { isDnsLabel } from './names.js';

/** JetStream stream that holds all agent events. */
export const EVENTS_STREAM = 'FLOTILLA_EVENTS';
/** Subject prefix; an agent publishes only under `flotilla.events.<its cluster>.>`. */
export const EVENTS_SUBJECT_PREFIX = 'flotilla.events';

/** Event types, by the short name used in subjects. */
export const EVENT_TYPES = {
  applied: 'dev.flotilla.applied',
  'apply-failed': 'dev.flotilla.apply.failed',
  'drift-detected': 'dev.flotilla.drift.detected',
  'drift-corrected': 'dev.flotilla.drift.corrected',
  'health-changed': 'dev.flotilla.health.changed',
  // The agent's buffer of events not yet accepted by NATS was full: it dropped some.
  'events-dropped': 'dev.flotilla.events.dropped',
  // Published by the hub itself (never by an agent) on flotilla.hub.sessions.<cluster>:
  // an agent's stream session started or ended.
  connected: 'dev.flotilla.session.connected',
  disconnected: 'dev.flotilla.session.disconnected',
} as const;

/** Short event kind, e.g. "applied". */
export type EventKind = keyof typeof EVENT_TYPES;

/** Per-bundle result of an apply. */
export interface BundleApplyResult {
  name: string;
  digest: string;
  created: number;
  configured: number;
  unchanged: number;
  deleted: number;
  failed: number;
  /** First failures, "Kind/namespace/name: reason" (bounded). */
  failures: string[];
  /** Set when the bundle was not applied (or not finished) because it waits; absent otherwise. */
  waiting?: BundleWaiting;
  /** The remote Helm chart the applied bundle was rendered from (its desired state's chart); absent otherwise. */
  chart?: BundleChart;
}

/** What a bundle waits for before it is applied or finished (dependsOn, or a Helm hook). */
export interface BundleWaiting {
  /** A bundle name (dependsOn), or the hook as "<phase> hook <Kind>/<namespace>/<name>". */
  for: string;
  /** Why, for humans: "bundle db is Progressing (…)", "pre-install hook Job/db/migrate not complete". */
  reason: string;
}

/** data of "applied" and "apply-failed". */
export interface AppliedData {
  revision: string;
  digest: string;
  generation: number;
  /** waiting: nothing failed, but some bundle waits (BundleApplyResult.waiting); added after 'failed'. */
  result: 'applied' | 'partial' | 'failed' | 'waiting';
  bundles: BundleApplyResult[];
  durationMs: number;
  message?: string;
}

/** An object an event is about. */
export interface EventObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

/** One changed field of a drifted object. Values of Secrets are "<redacted>". */
export interface DriftChange {
  /** JSON pointer, e.g. "/spec/replicas". */
  path: string;
  /** The value Flotilla applied (from Git); absent when the field should not exist. */
  old?: unknown;
  /** The value now in the cluster; absent when the field (or object) was removed. */
  new?: unknown;
}

/** data of "drift-detected". */
export interface DriftDetectedData {
  bundle: string;
  /** Git revision of the desired state being enforced. */
  revision: string;
  object: EventObjectRef;
  /** The object was deleted (rather than changed). */
  deleted: boolean;
  /** Changed fields we manage (bounded; `truncated` says how many more). */
  changes: DriftChange[];
  truncated?: number;
  /** Field manager that made the change (from managedFields), "" when unknown. */
  manager: string;
  /** The bundle's drift mode: enforce heals, warn only reports. */
  mode: 'enforce' | 'warn';
  /** Heals of this object within the fight window, including the one this event starts. */
  heals: number;
  /** True when the object is healed so often that something fights us; healing slows down. */
  fight: boolean;
  /** Delay before the corrective apply, ms (0 = immediately; absent in warn mode). */
  healDelayMs?: number;
}

/** data of "drift-corrected". */
export interface DriftCorrectedData {
  bundle: string;
  revision: string;
  object: EventObjectRef;
  /** Id of the drift-detected event this corrects. */
  driftEventId: string;
  /** From the first watch event to the corrective apply completing, ms. */
  latencyMs: number;
}

/** A bundle's health on a cluster. */
export type BundleHealthState = 'Ready' | 'Progressing' | 'Degraded' | 'Failed';

/** data of "health-changed". */
export interface HealthChangedData {
  bundle: string;
  revision: string;
  state: BundleHealthState;
  previous: BundleHealthState | '';
  /** Objects per health: ready, progressing, degraded, and failed to apply. */
  counts: { ready: number; progressing: number; degraded: number; failed: number };
  /** First reasons, "Kind/namespace/name: message" (bounded). */
  reasons: string[];
  /**
   * Digest of the desired state the health is about (the one `revision` applied); absent
   * from agents that predate it. Lets the hub tell "healthy at this content" apart from
   * "healthy before it", whichever commit carried the content.
   */
  digest?: string;
}

/** data of "events-dropped": the agent's event buffer overflowed (NATS unavailable too long). */
export interface EventsDroppedData {
  /** Events dropped since the last report. */
  dropped: number;
  /** Events dropped since the buffer was created (kept across restarts with a buffer file). */
  total: number;
  /** The buffer's bounds: events and bytes. */
  capacity: number;
  capacityBytes: number;
}

/** A CloudEvent as Flotilla publishes it. */
export interface FlotillaEvent<T = unknown> {
  specversion: '1.0';
  /** Unique and stable across retries: also the JetStream message id (de-duplication). */
  id: string;
  /** "flotilla/agent/<cluster>". */
  source: string;
  type: (typeof EVENT_TYPES)[EventKind];
  time: string;
  datacontenttype: 'application/json';
  /** Extension attribute: the cluster the event is about. */
  flotillacluster: string;
  data: T;
}

/** Subject an event of this kind from this cluster is published on. */
export function eventSubject(cluster: string, kind: EventKind): string {
  return `${EVENTS_SUBJECT_PREFIX}.${cluster}.${kind}`;
}

/** Creates an event with a fresh id and the current time. */
export function createEvent<T>(
  cluster: string,
  kind: EventKind,
  data: T,
  now = new Date(),
): FlotillaEvent<T> {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source: `flotilla/agent/${cluster}`,
    type: EVENT_TYPES[kind],
    time: now.toISOString(),
    datacontenttype: 'application/json',
    flotillacluster: cluster,
    data,
  };
}

const KIND_BY_TYPE = new Map(
  Object.entries(EVENT_TYPES).map(([k, t]) => [t as string, k as EventKind]),
);

/** Parses and checks an event's envelope; throws ValidationError naming what is wrong. */
export function parseEvent(bytes: Uint8Array | string): { kind: EventKind; event: FlotillaEvent } {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : new TextDecoder().decode(bytes));
  } catch (err) {
    throw new ValidationError('event is not valid JSON', { cause: err });
  }
  if (!value || typeof value !== 'object') throw new ValidationError('event is not a JSON object');
  const e = value as Partial<FlotillaEvent>;
  if (e.specversion !== '1.0')
    throw new ValidationError(
      `event specversion must be "1.0", got ${JSON.stringify(e.specversion)}`,
    );
  if (typeof e.id !== 'string' || e.id === '') throw new ValidationError('event has no id');
  // The id is kept (history, de-duplication): an unbounded one would be kept whole.
  if (e.id.length > EVENT_LIMITS.tokenChars)
    throw new ValidationError(`event id is longer than ${EVENT_LIMITS.tokenChars} characters`);
  const kind = typeof e.type === 'string' ? KIND_BY_TYPE.get(e.type) : undefined;
  if (!kind) throw new ValidationError(`unknown event type ${JSON.stringify(e.type)}`);
  if (typeof e.flotillacluster !== 'string' || !isDnsLabel(e.flotillacluster)) {
    throw new ValidationError(`event has an invalid cluster ${JSON.stringify(e.flotillacluster)}`);
  }
  if (typeof e.time !== 'string' || Number.isNaN(Date.parse(e.time)))
    throw new ValidationError('event has an invalid time');
  if (!e.data || typeof e.data !== 'object') throw new ValidationError('event has no data object');
  return { kind, event: e as FlotillaEvent };
}
