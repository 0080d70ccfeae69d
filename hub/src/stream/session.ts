// One agent stream. Its lifecycle is an explicit state machine:
//
//   awaiting-hello ──hello──► active ──(replaced | timeout | agent ended | hub stop)──► closing ──► closed
//         └──────────────(bad first message | no hello)───────────────────────────────► closing
//
// Writes go through the Outbox and respect flow control: when write() returns false
// the session waits for 'drain' before the next message.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { DesiredState, Logger } from '@flotilla/common';
import { LogFields, clipText, durations, errorMessage, isDnsLabel } from '@flotilla/common';
import type {
  AgentMessage__Output,
  ClusterCapabilities__Output,
  HubMessage,
} from '@flotilla/proto';
import { PROTOCOL_VERSION } from '@flotilla/proto';
import type { EncodingCache } from './chunks.js';
import type { HeartbeatSubject, HeartbeatWheel } from './heartbeats.js';
import { Outbox } from './outbox.js';
import type {
  CapabilitiesSink,
  DesiredStateSource,
  HelloSummary,
  SessionObserver,
} from './types.js';

/** Lifecycle states of a session. */
export type SessionState = 'awaiting-hello' | 'active' | 'closing' | 'closed';

const TRANSITIONS: Record<SessionState, readonly SessionState[]> = {
  'awaiting-hello': ['active', 'closing'],
  active: ['closing'],
  closing: ['closed'],
  closed: [],
};

/** A heartbeat silence of this many intervals closes the session. */
export const MISSED_HEARTBEATS_LIMIT = 3;

/** The transport under a session; a grpc-js duplex call in production, a fake in tests. */
export interface SessionWire {
  /** Writes a message; false means "wait for drain". */
  write(message: HubMessage): boolean;
  /** Resolves on 'drain' or when the stream closes. */
  waitDrain(): Promise<void>;
  /** Ends the stream, with an error status (and its trailers) when given. */
  end(error?: { code: GrpcStatus; details: string; trailers?: Record<string, string> }): void;
}

/** Hub-wide services a session uses. */
export interface SessionContext {
  source: DesiredStateSource;
  observer: SessionObserver;
  /** Where reported capabilities go; ignored when absent. */
  capabilities?: CapabilitiesSink;
  cache: EncodingCache;
  /** Next generation number for a cluster (increases for the hub's lifetime). */
  nextGeneration(cluster: string): number;
  /** Called once the hello is accepted, so the registry can replace an older session. */
  onActive(session: Session): void;
  /** Called once when the session starts closing. */
  onClosing(session: Session): void;
  logger: Logger;
  heartbeatIntervalMs: number;
  /** The one timer that ticks every session's heartbeat (see heartbeats.ts). */
  heartbeats: HeartbeatWheel;
  /** Longest hold of the first state for a capabilities re-render (default durations.capabilitiesRenderWait). */
  renderWaitMs?: number;
  now?: () => number;
}

/** A desired state's identity as last told to the agent. */
interface Sent {
  digest: string;
  revision: string;
}

/** One agent's stream: handshake, desired state delivery, acks and heartbeats. */
export class Session implements HeartbeatSubject {
  private stateValue: SessionState = 'awaiting-hello';
  private clusterName = '';
  private hello: HelloSummary | undefined;
  private readonly outbox = new Outbox();
  private pumping = false;
  /** The pump waits for this session's state to be encoded (nothing is being written). */
  private encoding = false;
  private sent: Sent | undefined;
  private lastReceived: number;
  private lastWritten: number;
  /** Set while the first state waits for the re-render the hello's capabilities cause. */
  private held: NodeJS.Timeout | undefined;
  /** While held: the capabilities version of this agent's report; a state rendered with an older one is not sent. */
  private heldFor = 0;
  private log: Logger;
  private readonly now: () => number;

  constructor(
    readonly id: string,
    private readonly wire: SessionWire,
    private readonly ctx: SessionContext,
  ) {
    this.now = ctx.now ?? Date.now;
    this.lastReceived = this.now();
    this.lastWritten = this.now();
    this.log = ctx.logger.child({ [LogFields.session]: id });
    ctx.heartbeats.add(this);
  }

  /** Current lifecycle state. */
  get state(): SessionState {
    return this.stateValue;
  }

  /** The cluster named in the hello ("" before it). */
  get cluster(): string {
    return this.clusterName;
  }

  private transition(to: SessionState, reason: string): boolean {
    const from = this.stateValue;
    if (!TRANSITIONS[from].includes(to)) return false;
    this.stateValue = to;
    this.log.debug({ from, to, reason }, 'session state');
    return true;
  }

  /** Handles one message from the agent. */
  received(msg: AgentMessage__Output): void {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return;
    this.lastReceived = this.now();
    if (this.stateValue === 'awaiting-hello') {
      this.handleHello(msg);
      return;
    }
    switch (msg.kind) {
      case 'ack':
        if (msg.ack) this.ctx.observer.acked(this.clusterName, msg.ack);
        this.ctx.observer.seen(this.clusterName, this.id);
        break;
      case 'heartbeat':
        this.ctx.observer.seen(this.clusterName, this.id, msg.heartbeat?.sentAtMs || undefined);
        break;
      case 'capabilities':
        this.ctx.observer.seen(this.clusterName, this.id);
        // Still held: wait for a rendering with these capabilities, not the first ones.
        if (this.report(msg.capabilities) && this.held !== undefined)
          this.heldFor = this.ctx.capabilities?.version ?? 0;
        break;
      default:
        this.log.warn({ kind: msg.kind }, 'unexpected message after hello, ignored');
    }
  }

  private handleHello(msg: AgentMessage__Output): void {
    const hello = msg.kind === 'hello' ? msg.hello : undefined;
    if (!hello) {
      this.close(
        `first message was ${msg.kind ?? 'empty'}, not hello`,
        GrpcStatus.INVALID_ARGUMENT,
      );
      return;
    }
    if (!isDnsLabel(hello.cluster)) {
      this.close(
        `hello has an invalid cluster name "${clipText(hello.cluster, 80)}"`,
        GrpcStatus.INVALID_ARGUMENT,
      );
      return;
    }
    // The capabilities go to their sink once; the session and observers keep the rest.
    const { capabilities, ...summary } = hello;
    this.hello = summary;
    this.clusterName = hello.cluster;
    this.log = this.log.child({ [LogFields.cluster]: hello.cluster });
    if (!this.transition('active', 'hello')) return;
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      this.log.warn(
        { protocolVersion: hello.protocolVersion },
        'agent speaks another protocol version',
      );
    }
    this.ctx.onActive(this);
    this.ctx.observer.connected(this.clusterName, this.id, summary);
    const rerender = this.report(capabilities);
    this.log.info(
      {
        agentVersion: hello.agentVersion,
        appliedDigest: hello.appliedDigest,
        [LogFields.revision]: hello.appliedRevision,
      },
      'agent connected',
    );
    this.outbox.pushMessage({
      welcome: {
        session: this.id,
        heartbeatIntervalMs: this.ctx.heartbeatIntervalMs,
        protocolVersion: PROTOCOL_VERSION,
      },
    });
    if (!rerender) return this.desiredChanged();
    // What is rendered now assumed other capabilities (a new cluster: the defaults); the
    // agent would apply it only to get another state a second later. Only a rendering
    // begun after this report releases it (a render already running does not), or the wait.
    this.heldFor = this.ctx.capabilities?.version ?? 0;
    this.held = setTimeout(
      () => this.release(),
      this.ctx.renderWaitMs ?? durations.capabilitiesRenderWait,
    );
    this.held.unref();
    void this.pump();
  }

  private report(c: ClusterCapabilities__Output | null | undefined): boolean {
    if (!c || !this.ctx.capabilities) return false;
    return this.ctx.capabilities.reported(this.clusterName, {
      kubeVersion: c.kubeVersion,
      apiVersions: c.apiVersions,
    });
  }

  /**
   * A render finished: a first state held for it is sent now (whether or not it changed),
   * if the cluster's state was rendered with the capabilities the agent reported.
   */
  renderFinished(): void {
    if (this.held === undefined || this.stillHeld()) return;
    this.release();
  }

  /** Re-reads the cluster's desired state and queues it (latest wins); a held first state stays held until its rendering. */
  desiredChanged(): void {
    if (this.stillHeld()) return;
    this.release();
  }

  // True while a held first state's rendering predates the agent's report. A source that
  // does not say which capabilities it rendered with releases on any render.
  private stillHeld(): boolean {
    if (this.held === undefined) return false;
    const renderedWith = this.ctx.source.capabilitiesVersion?.(this.clusterName);
    return renderedWith !== undefined && renderedWith < this.heldFor;
  }

  private release(): void {
    if (this.stateValue !== 'active') return;
    clearTimeout(this.held);
    this.held = undefined;
    const state = this.ctx.source.get(this.clusterName);
    if (state) this.outbox.offerState(state);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (
        let item = this.outbox.next();
        item && this.stateValue === 'active';
        item = this.outbox.next()
      ) {
        if (item.kind === 'message') await this.write(item.message);
        else await this.sendState(item.state);
      }
    } catch (err) {
      this.log.error({ [LogFields.err]: errorMessage(err) }, 'sending to agent failed');
      this.close('send failed', GrpcStatus.INTERNAL);
    } finally {
      this.pumping = false;
    }
  }

  private async write(message: HubMessage): Promise<void> {
    if (this.stateValue !== 'active') return;
    this.lastWritten = this.now();
    if (!this.wire.write(message)) await this.wire.waitDrain();
  }

  private async sendState(state: DesiredState): Promise<void> {
    const agentDigest = this.sent?.digest ?? this.hello?.appliedDigest ?? '';
    if (state.digest === agentDigest) {
      // Same content: the agent is at this state already; tell it the (maybe new) revision.
      if (!this.sent || this.sent.revision !== state.revision) {
        await this.write({ upToDate: { digest: state.digest, revision: state.revision } });
      }
      this.sent = { digest: state.digest, revision: state.revision };
      return;
    }
    // Sends wait for their turn (a fan-out queues one per session, a connect storm one per
    // new agent); the heartbeat goes out meanwhile, or the agent would presume the hub dead.
    this.encoding = true;
    const started = await this.ctx.cache
      .turn(() => this.startSend(state))
      .finally(() => (this.encoding = false));
    if (!started) return;
    await this.wire.waitDrain();
    for (const message of started.rest) await this.write(message);
    this.sent = { digest: state.digest, revision: state.revision };
    this.sentLog(state, started.total, started.bytes, started.generation);
  }

  // In the send's turn: encodes the state (or takes the encoding another session made) and
  // writes its chunks until the wire asks to wait. Undefined when done, or when a newer
  // state arrived while this one waited (the newer one is next); else the chunks left.
  private startSend(
    state: DesiredState,
  ): { rest: HubMessage[]; total: number; bytes: number; generation: number } | undefined {
    if (this.outbox.hasState || this.stateValue !== 'active') return undefined;
    const encoded = this.ctx.cache.encodeNow(state);
    const generation = this.ctx.nextGeneration(this.clusterName);
    const total = encoded.slices.length;
    const chunk = (index: number): HubMessage => ({
      desired: {
        generation,
        digest: encoded.digest,
        revision: encoded.revision,
        index,
        total,
        data: encoded.slices[index],
        compressedSize: encoded.compressedSize,
      },
    });
    this.ctx.cache.release(state);
    for (let index = 0; index < total; index++) {
      this.lastWritten = this.now();
      if (this.wire.write(chunk(index))) continue;
      const rest: HubMessage[] = [];
      for (let i = index + 1; i < total; i++) rest.push(chunk(i));
      return { rest, total, bytes: encoded.compressedSize, generation };
    }
    this.sent = { digest: state.digest, revision: state.revision };
    this.sentLog(state, total, encoded.compressedSize, generation);
    return undefined;
  }

  private sentLog(state: DesiredState, chunks: number, bytes: number, generation: number): void {
    this.log.info(
      {
        [LogFields.generation]: generation,
        [LogFields.digest]: state.digest,
        [LogFields.revision]: state.revision,
        chunks,
        bytes,
      },
      'desired state sent',
    );
  }

  /**
   * Called by the heartbeat wheel once per interval: a heartbeat when idle, and, when
   * `judge` (the hub's loop was not just held), the end of a session silent for too long.
   */
  heartbeatTick(judge: boolean): void {
    const now = this.now();
    const interval = this.ctx.heartbeatIntervalMs;
    if (judge && now - this.lastReceived >= MISSED_HEARTBEATS_LIMIT * interval) {
      const what = this.stateValue === 'awaiting-hello' ? 'no hello' : 'nothing received';
      this.close(`${what} for ${now - this.lastReceived} ms`, GrpcStatus.DEADLINE_EXCEEDED);
      return;
    }
    // Only when nothing else is written: anything else is already a sign of life.
    if (this.stateValue !== 'active' || now - this.lastWritten < interval * 0.9) return;
    if (this.outbox.idle && !this.pumping) {
      this.outbox.pushMessage({ heartbeat: { sentAtMs: now } });
      void this.pump();
    } else if (this.encoding) {
      // The pump waits for an encoding, not for the wire: a heartbeat fits in between.
      void this.write({ heartbeat: { sentAtMs: now } });
    }
  }

  /**
   * Starts closing: ends the stream (with an error status when code is given, carrying
   * `trailers`) and reports it once.
   */
  close(reason: string, code?: GrpcStatus, trailers?: Record<string, string>): void {
    const wasActive = this.stateValue === 'active';
    if (!this.transition('closing', reason)) return;
    this.ctx.heartbeats.remove(this);
    clearTimeout(this.held);
    this.held = undefined;
    this.ctx.onClosing(this);
    if (code === undefined || code === GrpcStatus.OK) this.wire.end();
    else this.wire.end({ code, details: reason, ...(trailers ? { trailers } : {}) });
    if (wasActive) {
      this.ctx.observer.disconnected(this.clusterName, this.id, reason);
      this.log.info({ reason }, 'agent disconnected');
    } else {
      this.log.warn({ reason }, 'session rejected');
    }
  }

  /** The underlying stream is gone. */
  finished(reason: string): void {
    this.close(reason);
    this.transition('closed', reason);
  }
}
