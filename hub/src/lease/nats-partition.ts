// A hub replica cut from NATS. It loses the once-only work lease on its own (lease.ts),
// but it would keep serving its agents from a view that no longer moves: their events
// (which they publish to NATS themselves) are not folded here, rollout decisions are not
// read, presence is not shared. So after `graceMs` without NATS the replica closes its
// agents' streams with UNAVAILABLE and refuses new ones (readiness false), so that agents
// given several hub addresses move to a replica that reaches NATS — but only when one
// does: it first asks the other replicas over HTTP, a path independent of NATS
// (peer-probe.ts). When none reaches NATS either (NATS is down for everyone, or this
// replica reaches no peer), sending agents away would leave the fleet without a hub, so
// it keeps them (an "outage": degraded, serving the desired states it has), and asks
// again every `recheckMs`. A blip shorter than the grace moves nobody.
//
//   connected ──disconnect──► away ──graceMs, a peer reaches NATS──► cut (streams closed, new ones refused)
//                              └────graceMs, no peer reaches NATS──► outage (agents kept)
//   outage ──a peer reaches NATS──► cut        cut ──no peer reaches NATS any more──► outage
//   away | cut | outage ──reconnect──► connected
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Logger } from '@flotilla/common';
import { durations, errorMessage } from '@flotilla/common';

/** How often the connection is looked at (1 s). */
const CHECK_INTERVAL_MS = 1_000;

/** States of NatsPartitionGuard. */
export type PartitionState = 'connected' | 'away' | 'cut' | 'outage';

/** Options of NatsPartitionGuard. */
export interface NatsPartitionGuardOptions {
  /** True while the NATS connection is up (NatsLink.connected). */
  isConnected: () => boolean;
  /** Called on becoming cut: close every agent stream. */
  onCut: (reason: string) => void;
  /**
   * Asks the other replicas, not through NATS, for one that reaches NATS; resolves with its
   * address, or undefined when none does (PeerProbe.servingPeer). Absent: no peers are
   * known, and agents are sent away without asking.
   */
  servingPeer?: () => Promise<string | undefined>;
  logger: Logger;
  /** How long without NATS before agents are sent away (default durations.natsPartitionGrace, 10 s). */
  graceMs?: number;
  /** How often peers are asked again while cut or in an outage (default durations.natsPeerRecheck, 5 s). */
  recheckMs?: number;
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
}

/** Tells when this replica has been cut from NATS long enough to send its agents away. */
export class NatsPartitionGuard {
  private stateValue: PartitionState = 'connected';
  private since = 0;
  private askedAt = -Infinity;
  private asking = false;
  private peer: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly graceMs: number;
  private readonly recheckMs: number;

  constructor(private readonly opts: NatsPartitionGuardOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.graceMs = opts.graceMs ?? durations.natsPartitionGrace;
    this.recheckMs = opts.recheckMs ?? durations.natsPeerRecheck;
  }

  /** Current state. */
  get state(): PartitionState {
    return this.stateValue;
  }

  /** Why agents are refused, while cut; undefined otherwise. */
  get refusal(): string | undefined {
    if (this.stateValue !== 'cut') return undefined;
    const grace = Math.round(this.graceMs / 1000);
    return this.peer
      ? `this hub replica has been cut from NATS for more than ${grace} s while another (${this.peer}) reaches it: connect to another replica`
      : `this hub replica has been cut from NATS for more than ${grace} s: connect to another replica`;
  }

  /** What the replica does about NATS being away for everyone, while in an outage; undefined otherwise. */
  get outage(): string | undefined {
    return this.stateValue === 'outage'
      ? 'no other hub replica reaches NATS either: this replica keeps its agents and serves the desired states it has'
      : undefined;
  }

  /** Starts looking at the connection every second. */
  start(): void {
    this.timer ??= setInterval(() => void this.check(), Math.min(CHECK_INTERVAL_MS, this.graceMs));
    this.timer.unref();
  }

  /** Stops looking. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Looks at the connection once (the timer calls it). Synchronous unless peers are asked;
   * the returned promise settles once their answer is acted on.
   */
  check(): Promise<void> | undefined {
    if (this.opts.isConnected()) {
      if (this.stateValue !== 'connected')
        this.opts.logger.info(
          { was: this.stateValue },
          this.stateValue === 'cut'
            ? 'NATS reachable again: accepting agents'
            : 'NATS reachable again',
        );
      this.stateValue = 'connected';
      this.askedAt = -Infinity;
      return undefined;
    }
    if (this.stateValue === 'connected') {
      this.stateValue = 'away';
      this.since = this.now();
      return undefined;
    }
    if (this.stateValue === 'away' && this.now() - this.since < this.graceMs) return undefined;
    const ask = this.opts.servingPeer;
    if (!ask) {
      if (this.stateValue === 'away') this.becomeCut(undefined);
      return undefined;
    }
    if (this.asking || this.now() - this.askedAt < this.recheckMs) return undefined;
    this.asking = true;
    this.askedAt = this.now();
    return ask()
      .catch((err: unknown) => {
        this.opts.logger.warn({ err: errorMessage(err) }, 'asking the other replicas failed');
        return undefined;
      })
      .then((peer) => {
        // Back meanwhile: the next check says so.
        if (this.opts.isConnected() || this.stateValue === 'connected') return;
        if (peer !== undefined) {
          this.peer = peer;
          if (this.stateValue !== 'cut') this.becomeCut(peer);
        } else if (this.stateValue !== 'outage') {
          const was = this.stateValue;
          this.stateValue = 'outage';
          this.opts.logger.warn(
            { awayMs: Math.round(this.now() - this.since), was },
            was === 'cut'
              ? 'no other replica reaches NATS any more: accepting agents again (degraded)'
              : 'NATS unreachable and no other replica reaches it: keeping agent streams (degraded)',
          );
        }
      })
      .finally(() => {
        this.asking = false;
      });
  }

  private becomeCut(peer: string | undefined): void {
    this.stateValue = 'cut';
    const reason = this.refusal as string;
    this.opts.logger.warn(
      { awayMs: Math.round(this.now() - this.since), ...(peer ? { peer } : {}) },
      'cut from NATS: closing agent streams and refusing new ones so agents move to other replicas',
    );
    this.opts.onCut(reason);
  }
}

/** gRPC handlers of a streaming service keyed by method name. */
type StreamHandlers = Record<string, (call: ServerDuplexStream<unknown, unknown>) => void>;

/**
 * Wraps the agent stream's handlers: while `refusal()` gives a reason, a new stream is
 * ended at once with UNAVAILABLE and that reason (the agent tries its next hub).
 */
export function refusingWhile<H extends object>(handlers: H, refusal: () => string | undefined): H {
  const out: StreamHandlers = {};
  for (const [name, handler] of Object.entries(handlers as StreamHandlers)) {
    out[name] = (call) => {
      const why = refusal();
      if (why === undefined) return handler(call);
      call.emit('error', { code: GrpcStatus.UNAVAILABLE, details: why });
    };
  }
  return out as unknown as H;
}
