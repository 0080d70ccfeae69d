// What the stream module needs from the rest of the hub, declared here so it depends
// on nothing bigger (the renderer and the status model implement these).
import type { ClusterCapabilities, DesiredState } from '@flotilla/common';
import type { Ack__Output, Hello__Output } from '@flotilla/proto';

/** A hello as observers see it: without the capabilities, which go to a CapabilitiesSink and are not kept per session. */
export type HelloSummary = Omit<Hello__Output, 'capabilities' | 'sentAtMs'> & {
  /** The agent's clock when it sent the hello (0 or absent from agents that predate it). */
  sentAtMs?: number;
};

/** Where sessions get each cluster's current desired state. */
export interface DesiredStateSource {
  /** The latest good desired state of a cluster, or undefined when it is not in the fleet. */
  get(cluster: string): DesiredState | undefined;
  /** Calls listener with the clusters whose desired state changed; returns an unsubscribe function. */
  subscribe(listener: (clusters: string[]) => void): () => void;
  /**
   * The capabilities version (CapabilitiesSink.version) when the render that made the
   * cluster's state began; undefined when unknown (any render then releases a held state).
   */
  capabilitiesVersion?(cluster: string): number | undefined;
}

/** Told about agent sessions; the status model implements it. */
export interface SessionObserver {
  /** A session for cluster finished its handshake. */
  connected(cluster: string, session: string, hello: HelloSummary): void;
  /**
   * Anything was received on the session (heartbeat or ack): the agent is alive. A
   * heartbeat carries agentClockMs, the agent's wall clock when it sent it.
   */
  seen(cluster: string, session: string, agentClockMs?: number): void;
  /** The agent reported the result of applying a generation. */
  acked(cluster: string, ack: Ack__Output): void;
  /** A session ended (replaced, timed out, closed by either side). */
  disconnected(cluster: string, session: string, reason: string): void;
}

/** Told what each connected cluster serves (from its hello and capabilities messages). */
export interface CapabilitiesSink {
  /**
   * The agent of `cluster` reported these (unchecked: the sink bounds and validates
   * them). True when they change what the cluster renders with: a re-render follows.
   */
  reported(cluster: string, capabilities: ClusterCapabilities): boolean;
  /** Increases with every change of any cluster's capabilities (0 before the first). */
  readonly version: number;
}

/** An observer that ignores everything, for tests and tools. */
export const nullObserver: SessionObserver = {
  connected() {},
  seen() {},
  acked() {},
  disconnected() {},
};
