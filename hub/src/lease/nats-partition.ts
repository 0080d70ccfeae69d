// A hub replica cut from NATS. It loses the once-only work lease on its own (lease.ts),
// but it would keep serving its agents from a view that no longer moves: their events
// (which they publish to NATS themselves) are not folded here, rollout decisions are not
// read, presence is not shared. So after `graceMs` without NATS the replica closes its
// agents' streams with UNAVAILABLE and refuses new ones (readiness false): agents given
// several hub addresses move to a replica that reaches NATS. A blip shorter than the
// grace (a NATS node restarting, a client failing over to another node) moves nobody.
//
//   connected ──disconnect──► away ──graceMs──► cut (streams closed, new ones refused)
//   away | cut ──reconnect──► connected
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Logger } from '@flotilla/common';
import { durations } from '@flotilla/common';

/** How often the connection is looked at (1 s). */
const CHECK_INTERVAL_MS = 1_000;

/** States of NatsPartitionGuard. */
export type PartitionState = 'connected' | 'away' | 'cut';

/** Options of NatsPartitionGuard. */
export interface NatsPartitionGuardOptions {
  /** True while the NATS connection is up (NatsLink.connected). */
  isConnected: () => boolean;
  /** Called on becoming cut: close every agent stream. */
  onCut: (reason: string) => void;
  logger: Logger;
  /** How long without NATS before agents are sent away (default durations.natsPartitionGrace, 10 s). */
  graceMs?: number;
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
}

/** Tells when this replica has been cut from NATS long enough to send its agents away. */
export class NatsPartitionGuard {
  private stateValue: PartitionState = 'connected';
  private since = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly graceMs: number;

  constructor(private readonly opts: NatsPartitionGuardOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.graceMs = opts.graceMs ?? durations.natsPartitionGrace;
  }

  /** Current state. */
  get state(): PartitionState {
    return this.stateValue;
  }

  /** Why agents are refused, while cut; undefined otherwise. */
  get refusal(): string | undefined {
    return this.stateValue === 'cut'
      ? `this hub replica has been cut from NATS for more than ${Math.round(this.graceMs / 1000)} s: connect to another replica`
      : undefined;
  }

  /** Starts looking at the connection every second. */
  start(): void {
    this.timer ??= setInterval(() => this.check(), Math.min(CHECK_INTERVAL_MS, this.graceMs));
    this.timer.unref();
  }

  /** Stops looking. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Looks at the connection once (the timer calls it). */
  check(): void {
    const up = this.opts.isConnected();
    if (up) {
      if (this.stateValue !== 'connected')
        this.opts.logger.info(
          { was: this.stateValue },
          this.stateValue === 'cut'
            ? 'NATS reachable again: accepting agents'
            : 'NATS reachable again',
        );
      this.stateValue = 'connected';
      return;
    }
    if (this.stateValue === 'connected') {
      this.stateValue = 'away';
      this.since = this.now();
      return;
    }
    if (this.stateValue === 'away' && this.now() - this.since >= this.graceMs) {
      this.stateValue = 'cut';
      const reason = this.refusal as string;
      this.opts.logger.warn(
        { awayMs: Math.round(this.now() - this.since) },
        'cut from NATS: closing agent streams and refusing new ones so agents move to other replicas',
      );
      this.opts.onCut(reason);
    }
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
