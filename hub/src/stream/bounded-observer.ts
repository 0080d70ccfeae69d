// The hub's edge for what agents send over gRPC: the texts of a hello and an ack are cut
// to EVENT_LIMITS before any part of the hub (status, session events, metrics) sees
// them, so an agent cannot grow a status record or a session event with them (an ack
// carrying a 3.9 MB message once made one cluster's record unsavable).
import { EVENT_LIMITS, clipText } from '@flotilla/common';
import type { Ack__Output } from '@flotilla/proto';
import type { HelloSummary, SessionObserver } from './types.js';

/** Told what was cut of a cluster's gRPC input ("ack.message", "hello.agentVersion", ...). */
export type StreamCutListener = (cluster: string, what: string) => void;

/** A session observer that passes on hellos and acks with every text bounded, reporting each cut. */
export function boundedObserver(inner: SessionObserver, onCut: StreamCutListener): SessionObserver {
  const clip = (cluster: string, what: string, value: string, max: number): string => {
    if (value.length <= max) return value;
    onCut(cluster, what);
    return clipText(value, max);
  };
  const T = EVENT_LIMITS.tokenChars;
  return {
    connected(cluster: string, session: string, hello: HelloSummary) {
      const bounded: HelloSummary = {
        ...hello,
        agentVersion: clip(cluster, 'hello.agentVersion', hello.agentVersion, T),
        appliedDigest: clip(cluster, 'hello.appliedDigest', hello.appliedDigest, T),
        appliedRevision: clip(cluster, 'hello.appliedRevision', hello.appliedRevision, T),
      };
      inner.connected(cluster, session, bounded);
    },
    seen: (cluster: string, session: string, agentClockMs?: number) =>
      inner.seen(cluster, session, agentClockMs),
    acked(cluster: string, ack: Ack__Output) {
      const bounded: Ack__Output = {
        ...ack,
        digest: clip(cluster, 'ack.digest', ack.digest, T),
        revision: clip(cluster, 'ack.revision', ack.revision, T),
        message: clip(cluster, 'ack.message', ack.message, EVENT_LIMITS.textChars),
      };
      inner.acked(cluster, bounded);
    },
    disconnected: (cluster: string, session: string, reason: string) =>
      inner.disconnected(cluster, session, clipText(reason, EVENT_LIMITS.textChars)),
  };
}
