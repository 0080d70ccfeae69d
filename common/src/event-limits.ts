// How much of each field of an agent's input the hub keeps (events on NATS, hello and ack
// on gRPC), and what an agent may publish. One agent, holding only its own valid
// credentials, must not be able to grow the hub's memory or its status records without
// bound: the hub cuts everything beyond these limits at its edge and counts the cut
// (hub/src/status/event-data.ts); the agent stays within them so nothing of a correct
// agent is ever cut (agent/src/report/fit-event.ts). Changing a limit is a protocol
// change: the agent's limits must never exceed the hub's (docs/protocol.md).

/** Limits on agent input, shared by agent and hub. */
export const EVENT_LIMITS = {
  /**
   * One serialized event with its headers, bytes (64 KiB): the events stream's
   * max_msg_size and the payload limit of each agent's NATS user. An agent's events are a
   * few KiB (an applied event is ~0.5 KiB plus ~0.2 KiB per bundle: 300 bundles fit).
   */
  eventBytes: 64 * 1024,
  /**
   * Events one cluster may publish per second, sustained (100), on top of a burst of
   * eventBurst (5,000): the hub skips and counts what comes faster (by the time JetStream
   * stored it), and the agent paces itself below both.
   */
  eventsPerSecond: 100,
  /** Events one cluster may publish at once before eventsPerSecond applies (5,000). */
  eventBurst: 5_000,
  /** One message, reason, failure text or field path, characters (1,024). */
  textChars: 1_024,
  /** Reasons of a health event, failures of one bundle (10). */
  texts: 10,
  /** A Kubernetes kind, namespace or object name, characters (253, the longest name Kubernetes allows). */
  nameChars: 253,
  /** A digest, revision, event id, session id or agent version, characters (128). */
  tokenChars: 128,
  /** Changed fields listed per drifted object (20, as the agent sends at most). */
  fields: 20,
  /** Drifted objects per event (8; the agent sends one). */
  objects: 8,
  /** Field managers per drifted object (4). */
  managers: 4,
  /** Bundles per applied event (2,000). */
  bundles: 2_000,
  /** An object count (created, failed, ...) at most (1,000,000,000). */
  count: 1_000_000_000,
} as const;

/**
 * The first `max` characters of s, marked with "…" when cut. The cut text is a copy: a
 * slice of a 600 KB string would otherwise keep all 600 KB alive for as long as the
 * short text is kept (V8 slices share their parent's memory).
 */
export function clipText(s: string, max: number): string {
  if (s.length <= max) return s;
  // Concatenating, then slicing, flattens into a new string of max characters.
  return (' ' + s.slice(0, Math.max(0, max - 1)) + '…').slice(1);
}
