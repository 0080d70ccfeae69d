// Agents' clocks are not the hub's. Acks are stamped by the hub when they arrive, events by
// the agent when they happen; ordering one against the other on two clocks minutes apart
// would let a stale failure hide a newer success. The hub therefore estimates, per cluster,
// how far the agent's clock is off its own from the agent's hello and heartbeats (each
// carries the agent's clock when sent) and places event times on its own clock.

/** Samples kept per cluster: the estimate follows a stepped agent clock within this many heartbeats. */
const SAMPLES = 8;

/** Offsets beyond this (30 days) are a broken or hostile clock, not skew: ignored. */
const MAX_OFFSET_MS = 30 * 24 * 3_600_000;

/**
 * Estimates each agent's clock offset (hub clock − agent clock, ms). A sample is the hub's
 * receive time minus the agent's send time, so it is the offset plus the message's delay
 * (never negative): the smallest recent sample is the best estimate, as in NTP's filter.
 */
export class AgentClocks {
  private readonly samples = new Map<string, number[]>();

  /** A new session: the agent may be a new process on another clock; forget the old samples. */
  reset(cluster: string): void {
    this.samples.delete(cluster);
  }

  /** Forgets a cluster (it left the fleet). */
  forget(cluster: string): void {
    this.samples.delete(cluster);
  }

  /**
   * Adds a sample: hubMs when the message arrived, agentMs the agent's clock when it sent
   * it. Returns the current estimate, or undefined when the sample is unusable and none is held.
   */
  sample(cluster: string, hubMs: number, agentMs: number): number | undefined {
    const offset = hubMs - agentMs;
    const list = this.samples.get(cluster) ?? [];
    if (Number.isFinite(offset) && agentMs > 0 && Math.abs(offset) <= MAX_OFFSET_MS) {
      list.push(offset);
      if (list.length > SAMPLES) list.shift();
      this.samples.set(cluster, list);
    }
    return list.length ? Math.min(...list) : undefined;
  }
}

/** An estimate is written to the cluster's record only when it moved by this much (1 s). */
export const CLOCK_OFFSET_RESOLUTION_MS = 1_000;

/** Offsets from this (60 s) on are logged: event times shown by the agent are that far off. */
export const CLOCK_SKEW_WARN_MS = 60_000;
