// The agent's side of flotilla.v1.AgentStream/Connect: one long-lived stream to the hub,
// re-dialled with jittered backoff whenever it breaks. It only receives, verifies and
// hands over desired states; applying them is the caller's job (see app.ts).
import * as grpc from '@grpc/grpc-js';
import {
  Backoff,
  EVENT_LIMITS,
  LogFields,
  clipText,
  durations,
  errorMessage,
  sleep,
} from '@flotilla/common';
import type { ClusterCapabilities, DesiredState, Logger } from '@flotilla/common';
import { PROTOCOL_VERSION, RECONNECT_TRAILER, loadFlotillaProto } from '@flotilla/proto';
import type { AgentMessage, AgentStreamClient, HubMessage__Output } from '@flotilla/proto';
import { ChunkAssembler, decodeDesiredState } from './chunks.js';
import { ConnectionStateMachine } from './state.js';

type Call = grpc.ClientDuplexStream<AgentMessage, HubMessage__Output>;

/** Options of HubConnection (all required: built by config). */
export interface HubConnectionOptions {
  cluster: string;
  /**
   * host:port of the hub's gRPC endpoint, or several comma separated (replicas of one hub):
   * the connection moves to the next one when a stream ends, at once when a hub is
   * unreachable. A DNS name resolving to several addresses is one entry (grpc-js tries them).
   */
  address: string;
  agentVersion: string;
  /** Bearer token sent as `authorization` metadata; never logged. */
  token?: string;
  /** Plaintext (dev only); otherwise TLS with `caPem` or the system roots. */
  insecure: boolean;
  caPem?: Buffer;
  /** Channel credentials to use instead (mTLS with the cluster's certificate); wins over insecure/caPem. */
  credentials?: grpc.ChannelCredentials;
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  /**
   * After a hub ended the stream saying it stops on purpose (RECONNECT_TRAILER), dial again
   * at the pace it asked for, instead of backing off, for this long (default
   * durations.hubRestartRedialWindow, 60 s).
   */
  redialWindowMs?: number;
  /** Source of randomness in [0, 1) for reconnect delays (default Math.random; tests). */
  random?: () => number;
  /** Heartbeat interval assumed until the hub's Welcome says otherwise. */
  heartbeatMs: number;
  /** How long a dialled hub may take to welcome the hello (default durations.welcomeWait). */
  welcomeWaitMs?: number;
  logger: Logger;
  /**
   * Extra grpc-js channel options (default none). A process holding many connections to
   * one hub (the fleet simulator) sets `grpc.use_local_subchannel_pool`, or they would all
   * share one TCP connection.
   */
  channelOptions?: grpc.ChannelOptions;
  /**
   * The agent's wall clock, stamped on hello and heartbeats (default Date.now); the same
   * clock its events carry, so the hub can tell how far it is off its own.
   */
  clock?: () => number;
}

/** A verified desired state received in a session. */
export interface ReceivedState {
  session: string;
  generation: number;
  state: DesiredState;
}

/** What the connection needs from the rest of the agent. */
export interface HubHandler {
  /** Digest and revision of the last applied state, for Hello ("" when none). */
  appliedMark(): { digest: string; revision: string };
  /** The cluster's capabilities as last read, for Hello; undefined before the first reading. */
  capabilities?(): ClusterCapabilities | undefined;
  /** A new verified desired state arrived. Must not block: applies are queued by the caller. */
  onDesired(received: ReceivedState): void;
  /** The hub says the applied digest is current; `revision` may be a newer commit with the same content. */
  onUpToDate(digest: string, revision: string): void;
}

/** Ack content, in the agent's vocabulary. */
export interface AckInput {
  generation: number;
  digest: string;
  revision: string;
  result: 'applied' | 'partial' | 'failed' | 'waiting';
  message: string;
  objectsApplied: number;
  objectsFailed: number;
}

const ACK_RESULT = {
  applied: 'ACK_RESULT_APPLIED',
  partial: 'ACK_RESULT_PARTIAL',
  failed: 'ACK_RESULT_FAILED',
  waiting: 'ACK_RESULT_WAITING',
} as const;
/** Shortest and longest redial pace a hub may ask for (100 ms .. 30 s). */
export const REDIAL_BOUNDS = { minMs: 100, maxMs: 30_000 } as const;

/** The redial pace a stream's trailers ask for (bounded), or undefined. */
export function redialHint(metadata: grpc.Metadata | undefined): number | undefined {
  const v = metadata?.get(RECONNECT_TRAILER)[0];
  const ms = typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(ms) || ms <= 0) return undefined;
  return Math.min(REDIAL_BOUNDS.maxMs, Math.max(REDIAL_BOUNDS.minMs, ms));
}

/** Why a session ended, and the redial pace its hub asked for. */
interface SessionEnd {
  reason: string;
  redialMs?: number | undefined;
}

/** Missed heartbeat intervals after which the stream is presumed dead. */
export const MISSED_HEARTBEATS = 3;

/**
 * A watchdog tick later than this (or two of its periods) means the agent's own event loop
 * was held: what the hub sent meanwhile is still in the socket, read after this turn's
 * timers, so that tick judges nothing (250 ms).
 */
export const WATCHDOG_STALL_MS = 250;

/** The hub addresses of a comma-separated list (one or more; blanks dropped). */
export function hubAddresses(list: string): string[] {
  const out = list
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  return out.length > 0 ? out : [list];
}

/** The hub connection; start() once, stop() once. */
export class HubConnection {
  /** Lifecycle state, observable. */
  readonly machine: ConnectionStateMachine;
  private client: AgentStreamClient;
  /** A client with new credentials, used from the next dial on (the open stream is left alone). */
  private nextClient: AgentStreamClient | undefined;
  private readonly addresses: string[];
  private index = 0;
  private creds: grpc.ChannelCredentials;
  /** The current session was welcomed by its hub. */
  private welcomed = false;
  /** When the current session was welcomed, and the heartbeat interval it was given. */
  private welcomedAt = 0;
  private welcomedInterval = 0;
  /** Sessions in a row that ended without a welcome. */
  private failedInRow = 0;
  private readonly stopping = new AbortController();
  private call: Call | undefined;
  private session = '';
  private loop: Promise<void> | undefined;
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly opts: HubConnectionOptions,
    private readonly handler: HubHandler,
  ) {
    this.machine = new ConnectionStateMachine(opts.logger);
    this.addresses = hubAddresses(opts.address);
    this.creds =
      opts.credentials ??
      (opts.insecure
        ? grpc.credentials.createInsecure()
        : grpc.credentials.createSsl(opts.caPem ?? null));
    this.client = this.newClient(this.creds);
  }

  /** The hub address dialled now (one of the list in `address`). */
  get address(): string {
    return this.addresses[this.index] as string;
  }

  private newClient(creds: grpc.ChannelCredentials): AgentStreamClient {
    const { AgentStream } = loadFlotillaProto();
    return new AgentStream(this.address, creds, {
      ...this.opts.channelOptions,
      // Only keepalive notices a peer that vanished without closing the connection.
      'grpc.keepalive_time_ms': this.opts.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': this.opts.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
    }) as unknown as AgentStreamClient;
  }

  /**
   * Dials with these credentials from the next session on. The current stream stays up:
   * a renewed certificate must not cost a reconnect, but the old TLS connection (and
   * the certificate it was opened with) must not be reused once the stream ends.
   */
  useCredentials(creds: grpc.ChannelCredentials): void {
    this.creds = creds;
    this.nextClient?.close();
    this.nextClient = this.newClient(creds);
  }

  /** Starts dialling in the background. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Closes the stream and stops reconnecting. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.call?.end();
    this.call?.cancel();
    await this.loop;
    this.client.close();
    this.nextClient?.close();
    if (this.machine.state !== 'closed') this.machine.transition('closed', 'stopped');
  }

  /**
   * Tells the hub the cluster's capabilities changed, on the open stream (after its
   * hello); without one, the next hello carries them.
   */
  async reportCapabilities(capabilities: ClusterCapabilities): Promise<void> {
    const call = this.call;
    if (!call) return;
    await this.write(call, {
      capabilities: {
        kubeVersion: capabilities.kubeVersion,
        apiVersions: [...capabilities.apiVersions],
      },
    });
  }

  /** Sends an ack if `session` is still the current one; false when it ended (the next Hello carries the applied digest instead). */
  async ack(session: string, ack: AckInput): Promise<boolean> {
    const call = this.call;
    if (!call || session === '' || session !== this.session) return false;
    // The hub keeps at most EVENT_LIMITS.textChars of it; the rest would only be cut there.
    const message = clipText(ack.message, EVENT_LIMITS.textChars);
    await this.write(call, { ack: { ...ack, message, result: ACK_RESULT[ack.result] } });
    return true;
  }

  private async run(): Promise<void> {
    const random = this.opts.random ?? Math.random;
    const backoff = new Backoff({
      initialMs: this.opts.reconnectInitialMs,
      maxMs: this.opts.reconnectMaxMs,
      random,
    });
    const signal = this.stopping.signal;
    const windowMs = this.opts.redialWindowMs ?? durations.hubRestartRedialWindow;
    // A hub that said it is restarting: redial at its pace until this time.
    let redial: { ms: number; until: number } | undefined;
    while (!signal.aborted) {
      if (this.nextClient) {
        this.client.close();
        this.client = this.nextClient;
        this.nextClient = undefined;
      }
      this.machine.transition('connecting', `dial ${this.address}`);
      this.welcomed = false;
      const { reason, redialMs } = await this.runSession();
      if (signal.aborted) break;
      // The backoff starts over only after a session that lasted a heartbeat interval: a
      // hub that welcomes and then drops its agents (overloaded, in a connect storm) gets
      // them back later each time, not all at once every half second.
      if (this.welcomed && Date.now() - this.welcomedAt >= this.welcomedInterval) backoff.reset();
      if (redialMs !== undefined) redial = { ms: redialMs, until: Date.now() + windowMs };
      else if (redial && Date.now() >= redial.until) redial = undefined;
      const hub = this.address;
      // Several hubs: the next session dials the next one. A hub that never welcomed us
      // is skipped at once, until every hub failed once in a row; then the backoff waits.
      let failover = false;
      if (this.addresses.length > 1) {
        this.failedInRow = this.welcomed ? 0 : this.failedInRow + 1;
        failover = !this.welcomed && this.failedInRow % this.addresses.length !== 0;
        this.index = (this.index + 1) % this.addresses.length;
        this.useCredentials(this.creds); // a client for the next hub
      }
      // Half to whole the asked pace: the fleet comes back spread over it, not at once.
      const delayMs = failover
        ? 0
        : redial
          ? Math.round(redial.ms / 2 + (random() * redial.ms) / 2)
          : backoff.next();
      this.machine.transition('backoff', reason);
      this.opts.logger.warn(
        failover
          ? { reason, hub, next: this.address }
          : {
              reason,
              delayMs,
              attempt: backoff.attempts,
              hub,
              ...(redial ? { redial: true } : {}),
            },
        failover ? 'hub unreachable; trying the next hub' : 'hub connection failed; retrying',
      );
      if (delayMs > 0) await sleep(delayMs, signal);
    }
    if (this.machine.state !== 'closed') this.machine.transition('closed', 'stopped');
  }

  /** One stream, from dial to its end; resolves with the reason it ended. */
  private runSession(): Promise<SessionEnd> {
    const md = new grpc.Metadata();
    if (this.opts.token) md.set('authorization', `Bearer ${this.opts.token}`);
    const call = this.client.Connect(md);
    this.call = call;
    const assembler = new ChunkAssembler();
    let intervalMs = this.opts.heartbeatMs;
    let lastSeen = Date.now();
    let heartbeat: NodeJS.Timeout | undefined;
    return new Promise((resolve) => {
      let done = false;
      const finish = (reason: string, redialMs?: number): void => {
        if (done) return;
        done = true;
        clearInterval(heartbeat);
        clearInterval(watchdog);
        if (this.call === call) {
          this.call = undefined;
          this.session = '';
        }
        call.cancel();
        resolve({ reason, redialMs });
      };
      // Before Welcome the hub is given welcomeWait (it may be admitting a storm); after,
      // MISSED_HEARTBEATS of its interval.
      const welcomeWaitMs = this.opts.welcomeWaitMs ?? durations.welcomeWait;
      const periodMs = Math.max(50, Math.floor(this.opts.heartbeatMs / 4));
      let lastCheck = Date.now();
      const watchdog = setInterval(() => {
        const now = Date.now();
        const stalled = now - lastCheck > Math.max(2 * periodMs, WATCHDOG_STALL_MS);
        lastCheck = now;
        if (stalled) return;
        const silentMs = now - lastSeen;
        const limitMs = this.welcomed ? MISSED_HEARTBEATS * intervalMs : welcomeWaitMs;
        if (silentMs > limitMs)
          finish(
            this.welcomed
              ? `no message from the hub for ${silentMs} ms`
              : `no welcome from the hub for ${silentMs} ms`,
          );
      }, periodMs);
      call.on('data', (m: HubMessage__Output) => {
        lastSeen = Date.now();
        if (m.kind === 'welcome' && m.welcome) {
          intervalMs =
            m.welcome.heartbeatIntervalMs > 0
              ? m.welcome.heartbeatIntervalMs
              : this.opts.heartbeatMs;
          clearInterval(heartbeat);
          heartbeat = this.onWelcome(call, m.welcome, intervalMs);
        } else if (m.kind === 'desired' && m.desired) {
          this.onChunk(call, assembler, m.desired);
        } else if (m.kind === 'upToDate' && m.upToDate) {
          this.handler.onUpToDate(m.upToDate.digest, m.upToDate.revision);
        }
      });
      call.on('error', (err: grpc.ServiceError) =>
        finish(
          `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`,
          err.code === grpc.status.UNAVAILABLE ? redialHint(err.metadata) : undefined,
        ),
      );
      call.on('end', () => finish('the hub closed the stream'));
      const mark = this.handler.appliedMark();
      const caps = this.handler.capabilities?.();
      void this.write(call, {
        hello: {
          cluster: this.opts.cluster,
          agentVersion: this.opts.agentVersion,
          appliedDigest: mark.digest,
          appliedRevision: mark.revision,
          protocolVersion: PROTOCOL_VERSION,
          sentAtMs: this.wallClock(),
          ...(caps
            ? {
                capabilities: {
                  kubeVersion: caps.kubeVersion,
                  apiVersions: [...caps.apiVersions],
                },
              }
            : {}),
        },
      });
    });
  }

  private wallClock(): number {
    return (this.opts.clock ?? Date.now)();
  }

  /** Marks the session connected and starts heartbeats; returns their timer. */
  private onWelcome(
    call: Call,
    welcome: NonNullable<HubMessage__Output['welcome']>,
    intervalMs: number,
  ): NodeJS.Timeout {
    this.session = welcome.session;
    this.welcomed = true;
    this.welcomedAt = Date.now();
    this.welcomedInterval = intervalMs;
    this.machine.transition('connected', 'welcome');
    this.opts.logger.info(
      {
        [LogFields.session]: this.session,
        heartbeatMs: intervalMs,
        hubProtocol: welcome.protocolVersion,
      },
      'connected to hub',
    );
    return setInterval(
      () => void this.write(call, { heartbeat: { sentAtMs: this.wallClock() } }),
      intervalMs,
    );
  }

  private onChunk(
    call: Call,
    assembler: ChunkAssembler,
    chunk: NonNullable<HubMessage__Output['desired']>,
  ): void {
    const session = this.session;
    try {
      const whole = assembler.add(chunk);
      if (!whole) return;
      const state = decodeDesiredState(whole, this.opts.cluster);
      this.handler.onDesired({ session, generation: whole.generation, state });
    } catch (err) {
      // A bad state is never applied; the hub learns why from the ack.
      this.opts.logger.warn(
        { [LogFields.generation]: chunk.generation, [LogFields.err]: errorMessage(err) },
        'desired state rejected',
      );
      void this.write(call, {
        ack: {
          generation: chunk.generation,
          digest: chunk.digest,
          revision: chunk.revision,
          result: 'ACK_RESULT_FAILED',
          message: clipText(errorMessage(err), EVENT_LIMITS.textChars),
          objectsApplied: 0,
          objectsFailed: 0,
        },
      });
    }
  }

  /** Writes in order, waiting for 'drain' when the stream's buffer is full. */
  private write(call: Call, msg: AgentMessage): Promise<void> {
    const next = this.writes.then(
      () =>
        new Promise<void>((resolve) => {
          if (call !== this.call || call.destroyed || call.writableEnded) return resolve();
          if (call.write(msg)) return resolve();
          const done = (): void => {
            call.off('drain', done);
            call.off('close', done);
            call.off('error', done);
            resolve();
          };
          call.on('drain', done);
          call.on('close', done);
          call.on('error', done);
        }),
    );
    this.writes = next;
    return next;
  }
}
