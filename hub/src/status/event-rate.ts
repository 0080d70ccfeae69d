// Each cluster's event rate, limited at the hub's edge: a token bucket per cluster,
// clocked by when JetStream stored each event rather than when the hub reads it, so a
// backlog read fast after a hub restart or a NATS outage counts at the pace it was
// published. nats-server has no rate limit per user (the JWT's `data` limit is not
// enforced, checked on 2.12), so without this one cluster publishing as fast as it can
// would take the hub's whole ingest while the others' events wait behind its flood.
import { EVENT_LIMITS } from '@flotilla/common';

/** Options of ClusterEventRate. */
export interface EventRateOptions {
  /** Events per second a cluster may sustain (default EVENT_LIMITS.eventsPerSecond, 100). */
  perSecond?: number;
  /** Events a cluster may send at once (default EVENT_LIMITS.eventBurst, 5,000). */
  burst?: number;
  /** Told about every event over the limit. */
  onLimited?: (cluster: string) => void;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

/** Per-cluster token buckets; admit() says whether one more event of a cluster is within its rate. */
export class ClusterEventRate {
  private readonly buckets = new Map<string, Bucket>();
  readonly perSecond: number;
  readonly burst: number;

  constructor(private readonly opts: EventRateOptions = {}) {
    this.perSecond = opts.perSecond ?? EVENT_LIMITS.eventsPerSecond;
    this.burst = opts.burst ?? EVENT_LIMITS.eventBurst;
  }

  /** True when an event of cluster stored at atMs is within the rate (and takes its token). */
  admit(cluster: string, atMs: number): boolean {
    let b = this.buckets.get(cluster);
    if (!b) {
      b = { tokens: this.burst, atMs };
      this.buckets.set(cluster, b);
    }
    // Redeliveries can be older than what came before: time never runs backwards here.
    if (atMs > b.atMs) {
      b.tokens = Math.min(this.burst, b.tokens + ((atMs - b.atMs) / 1000) * this.perSecond);
      b.atMs = atMs;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    this.opts.onLimited?.(cluster);
    return false;
  }

  /** The text a limited cluster's status shows. */
  describe(): string {
    return `events over ${this.perSecond}/s (burst ${this.burst}) skipped, not folded`;
  }
}
