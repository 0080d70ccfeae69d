// Session events: the hub records every agent stream session start and end as a durable
// event in FLOTILLA_EVENTS, next to the agents' events, so "when did cluster C connect or
// drop, how often does it flap, with which agent version" outlives a hub restart. Only
// the hub publishes them, on flotilla.hub.sessions.<cluster>: agents' NATS credentials
// allow flotilla.events.<their cluster>.> only (identity/nats-jwt.ts), and the consumer
// refuses a session event on any other subject, so no agent can forge one.
import type { EventKind, FlotillaEvent } from '@flotilla/common';
import { ValidationError, createEvent, eventSubject } from '@flotilla/common';
import type { ClusterRecord } from './model.js';

/** Subject prefix of session events; only the hub's credentials may publish under it. */
export const SESSIONS_SUBJECT_PREFIX = 'flotilla.hub.sessions';

/** The kinds of session events. */
export type SessionEventKind = 'connected' | 'disconnected';

/** The event kinds only the hub publishes. */
export const SESSION_EVENT_KINDS: readonly SessionEventKind[] = ['connected', 'disconnected'];

/** data of "connected" and "disconnected". */
export interface SessionEventData {
  /** Session id (one per stream). */
  session: string;
  /** Version the agent announced in its hello. */
  agentVersion: string;
  /** Why the session ended ("" for connected). */
  reason: string;
  /** The hub that served the session (config hubId). */
  hub: string;
  /** What the agent said it had applied when it connected ("" when unknown). */
  appliedRevision: string;
  appliedDigest: string;
}

/** True for the kinds only the hub publishes. */
export function isSessionKind(kind: EventKind): kind is SessionEventKind {
  return (SESSION_EVENT_KINDS as readonly EventKind[]).includes(kind);
}

/** Subject a session event of cluster is published on. */
export function sessionSubject(cluster: string): string {
  return `${SESSIONS_SUBJECT_PREFIX}.${cluster}`;
}

/**
 * The session event of kind. Its id is derived from the session, so a retried publish is
 * de-duplicated by JetStream and by the history, and folding it twice changes nothing.
 */
export function sessionEvent(
  cluster: string,
  kind: SessionEventKind,
  data: SessionEventData,
  now: Date,
): FlotillaEvent<SessionEventData> {
  return {
    ...createEvent(cluster, kind, data, now),
    id: `${data.session}.${kind}`,
    source: `flotilla/hub/${data.hub}`,
  };
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Normalizes a session event's data; throws ValidationError without a session id. */
export function readSession(data: unknown): SessionEventData {
  const d = data as Record<string, unknown>;
  const session = str(d.session);
  if (!session) throw new ValidationError('session event has no session id (data.session)');
  return {
    session,
    agentVersion: str(d.agentVersion),
    reason: str(d.reason),
    hub: str(d.hub),
    appliedRevision: str(d.appliedRevision),
    appliedDigest: str(d.appliedDigest),
  };
}

/**
 * Checks that an event came on the subject its kind and cluster allow: session events on
 * flotilla.hub.sessions.<cluster>, agent events on flotilla.events.<cluster>.<kind>. An
 * agent may publish only under its own cluster's subjects, so this is what stops it from
 * speaking for another cluster, or for the hub. Throws ValidationError otherwise.
 */
export function checkEventSubject(subject: string, kind: EventKind, event: FlotillaEvent): void {
  const cluster = event.flotillacluster;
  const expected = isSessionKind(kind) ? sessionSubject(cluster) : eventSubject(cluster, kind);
  if (subject !== expected)
    throw new ValidationError(
      `${kind} event about cluster "${cluster}" arrived on subject ${subject}, expected ${expected}`,
    );
}

/** What a session event tells about a cluster, from the event or the live session. */
export interface SessionFacts {
  agentVersion: string;
  reason: string;
}

/**
 * Records a session start or end on a cluster's record unless a newer one is known
 * (`live`: reported by the stream itself, always the newest); returns true when it
 * changed the record. It never touches `connected`: the live
 * stream alone says whether a session is open, so a replayed or duplicate event cannot
 * flip it. Any order of delivery ends in the same record.
 */
export function applySessionFacts(
  rec: ClusterRecord,
  kind: SessionEventKind,
  facts: SessionFacts,
  atMs: number,
  live = false,
): boolean {
  if (kind === 'connected') {
    // What the live stream reports is the newest by definition, even within the same
    // millisecond as an earlier session's durable event.
    if (!live && atMs <= (rec.lastConnectedMs ?? 0)) return false;
    rec.lastConnectedMs = Math.max(atMs, rec.lastConnectedMs ?? 0);
    if (facts.agentVersion) rec.agentVersion = facts.agentVersion;
  } else {
    if (!live && atMs <= (rec.lastDisconnectedMs ?? 0)) return false;
    rec.lastDisconnectedMs = Math.max(atMs, rec.lastDisconnectedMs ?? 0);
    rec.lastDisconnectReason = facts.reason;
  }
  if (atMs > rec.lastSeenMs) rec.lastSeenMs = atMs;
  return true;
}
