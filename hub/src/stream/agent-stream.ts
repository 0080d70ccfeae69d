// The AgentStream service: authenticates each stream, runs one Session per stream and
// keeps at most one active session per cluster (a new one replaces the old). Desired
// state changes are fanned out to the sessions of the clusters that changed.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { Metadata as GrpcMetadata, status as GrpcStatus } from '@grpc/grpc-js';
import type { Metadata, ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from '@flotilla/common';
import { LogFields, durations, errorMessage } from '@flotilla/common';
import { RECONNECT_TRAILER } from '@flotilla/proto';
import type { AgentMessage__Output, AgentStreamHandlers, HubMessage } from '@flotilla/proto';
import { DEFAULT_ENCODE_BUDGET_MS, EncodingCache } from './chunks.js';
import { HeartbeatWheel } from './heartbeats.js';
import { Session } from './session.js';
import type { SessionWire } from './session.js';
import type { CapabilitiesSink, DesiredStateSource, SessionObserver } from './types.js';

/** Options of AgentStreamService. */
export interface AgentStreamOptions {
  source: DesiredStateSource;
  observer: SessionObserver;
  /** Where agents' capability reports go (hello and capabilities messages); dropped when absent. */
  capabilities?: CapabilitiesSink;
  logger: Logger;
  /** Shared agent token; undefined accepts every agent (development only). */
  token: string | undefined;
  /** Heartbeat interval announced to agents (default from config, 10 s). */
  heartbeatIntervalMs: number;
  /**
   * Per-cluster identity (mTLS): returns the cluster the call's certificate names, or
   * throws (the stream is refused with UNAUTHENTICATED). When set, the shared token is
   * not consulted and hello.cluster must equal the certificate's cluster.
   */
  authenticate?: (call: Call) => string;
  /** Most sessions told of a new desired state per turn of the event loop (default NOTIFY_SLICE). */
  notifySlice?: number;
  /** Longest stretch of desired-state sends per turn of the event loop (default DEFAULT_ENCODE_BUDGET_MS). */
  sendBudgetMs?: number;
  /**
   * When the hub stops, agents are asked to dial again about this often instead of backing
   * off (the RECONNECT_TRAILER; default durations.hubRestartRedial, 1 s; 0 asks nothing).
   */
  redialMs?: number;
}

/**
 * Most sessions told of a new desired state per turn of the event loop (1,000); a turn
 * also stops once it has taken the send budget. Telling a session costs microseconds (its
 * send waits in the send queue): with 100 per turn, a fan-out of 1,000 needed ten turns
 * of the loop, each after a pass over acks, events and queries, before its last send was
 * even queued.
 */
export const NOTIFY_SLICE = 1_000;

/** A server-side AgentStream call. */
export type Call = ServerDuplexStream<AgentMessage__Output, HubMessage>;

function digestToken(token: string): Buffer {
  // Hashing first gives equal-length buffers, so the compare's time says nothing about the token.
  return createHash('sha256').update(token).digest();
}

function trailersOf(trailers: Record<string, string> | undefined): { metadata?: GrpcMetadata } {
  if (!trailers) return {};
  const metadata = new GrpcMetadata();
  for (const [k, v] of Object.entries(trailers)) metadata.set(k, v);
  return { metadata };
}

/** Adapts a grpc-js server call to the SessionWire a session writes to. */
function callWire(call: Call): SessionWire {
  let ended = false;
  return {
    write: (message) => (ended || call.destroyed ? true : call.write(message)),
    waitDrain: () =>
      new Promise<void>((resolve) => {
        const done = (): void => {
          call.off('drain', done);
          call.off('close', done);
          resolve();
        };
        call.once('drain', done);
        call.once('close', done);
      }),
    end: (error) => {
      if (ended) return;
      ended = true;
      // grpc-js turns an 'error' event on a server stream into the call's status.
      if (error)
        call.emit('error', {
          code: error.code,
          details: error.details,
          ...trailersOf(error.trailers),
        });
      else call.end();
    },
  };
}

/** Serves flotilla.v1.AgentStream/Connect. */
export class AgentStreamService {
  private readonly sessions = new Map<string, Session>();
  /** Every open session, including those still awaiting hello. */
  private readonly live = new Set<Session>();
  private readonly generations = new Map<string, number>();
  private readonly warnedUnknown = new Set<string>();
  private readonly cache: EncodingCache;
  private readonly heartbeats: HeartbeatWheel;
  private readonly tokenDigest: Buffer | undefined;
  /** Certificate cluster of each session (mTLS mode), to close them on revocation. */
  private readonly peers = new Map<Session, string>();
  private unsubscribe: (() => void) | undefined;
  private stopping = false;
  /** Clusters whose session is yet to be told of a new desired state, in order. */
  private readonly toNotify = new Set<string>();
  private renderPending = false;
  private notifying: NodeJS.Immediate | undefined;
  private readonly sliceSize: number;
  private readonly budgetMs: number;
  private started = 0;

  constructor(private readonly opts: AgentStreamOptions) {
    this.tokenDigest = opts.token === undefined ? undefined : digestToken(opts.token);
    this.sliceSize = Math.max(1, opts.notifySlice ?? NOTIFY_SLICE);
    this.budgetMs = Math.max(0, opts.sendBudgetMs ?? DEFAULT_ENCODE_BUDGET_MS);
    this.cache = new EncodingCache({ budgetMs: this.budgetMs });
    this.heartbeats = new HeartbeatWheel({ intervalMs: opts.heartbeatIntervalMs });
    this.unsubscribe = opts.source.subscribe((clusters) => this.desiredChanged(clusters));
  }

  /** grpc-js handlers to register with server.addService. */
  handlers(): AgentStreamHandlers {
    return { Connect: (call: Call) => this.connect(call) };
  }

  /** Number of active sessions. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Sessions started (welcomed) since the service was created. */
  get sessionsStarted(): number {
    return this.started;
  }

  private authorized(metadata: Metadata): boolean {
    if (!this.tokenDigest) return true;
    const header = metadata.get('authorization')[0];
    if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
    return timingSafeEqual(digestToken(header.slice('Bearer '.length)), this.tokenDigest);
  }

  private connect(call: Call): void {
    if (this.stopping) {
      call.emit('error', {
        code: GrpcStatus.UNAVAILABLE,
        details: 'hub is shutting down',
        ...trailersOf(this.redialTrailers()),
      });
      return;
    }
    let peerCluster: string | undefined;
    if (this.opts.authenticate) {
      try {
        peerCluster = this.opts.authenticate(call);
      } catch (err) {
        this.opts.logger.warn(
          { peer: call.getPeer(), [LogFields.err]: errorMessage(err) },
          'agent stream rejected: no valid cluster certificate',
        );
        call.emit('error', { code: GrpcStatus.UNAUTHENTICATED, details: errorMessage(err) });
        return;
      }
    } else if (!this.authorized(call.metadata)) {
      // The peer address helps find a misconfigured agent; the token itself is never logged.
      this.opts.logger.warn(
        { peer: call.getPeer() },
        'agent stream rejected: missing or invalid token',
      );
      call.emit('error', {
        code: GrpcStatus.UNAUTHENTICATED,
        details: 'missing or invalid agent token',
      });
      return;
    }
    const session = new Session(randomUUID(), callWire(call), {
      source: this.opts.source,
      observer: this.opts.observer,
      ...(this.opts.capabilities ? { capabilities: this.opts.capabilities } : {}),
      cache: this.cache,
      logger: this.opts.logger,
      heartbeatIntervalMs: this.opts.heartbeatIntervalMs,
      heartbeats: this.heartbeats,
      nextGeneration: (cluster) => this.nextGeneration(cluster),
      onActive: (s) => this.activate(s),
      onClosing: (s) => {
        this.live.delete(s);
        this.peers.delete(s);
        if (this.sessions.get(s.cluster) === s) this.sessions.delete(s.cluster);
      },
    });
    this.live.add(session);
    if (peerCluster !== undefined) this.peers.set(session, peerCluster);
    call.on('data', (msg: AgentMessage__Output) => {
      // A certificate speaks for one cluster only: a hello naming another one is refused
      // before the session sees it, so not one byte of that cluster's state is sent.
      if (
        peerCluster !== undefined &&
        session.state === 'awaiting-hello' &&
        msg.kind === 'hello' &&
        msg.hello?.cluster !== peerCluster
      ) {
        this.opts.logger.warn(
          { [LogFields.cluster]: peerCluster, asked: msg.hello?.cluster },
          'agent asked for another cluster; refused',
        );
        session.close(
          `certificate is for cluster "${peerCluster}", not "${msg.hello?.cluster ?? ''}"`,
          GrpcStatus.PERMISSION_DENIED,
        );
        return;
      }
      session.received(msg);
    });
    call.on('end', () => session.close('agent ended the stream'));
    call.on('cancelled', () => session.finished('cancelled by agent'));
    call.on('error', (err: Error) => session.finished(`stream error: ${err.message}`));
    call.on('close', () => session.finished('stream closed'));
  }

  private activate(session: Session): void {
    this.started++;
    const old = this.sessions.get(session.cluster);
    this.sessions.set(session.cluster, session);
    if (old && old !== session) old.close(`replaced by session ${session.id}`, GrpcStatus.ABORTED);
    if (!this.opts.source.get(session.cluster) && !this.warnedUnknown.has(session.cluster)) {
      this.warnedUnknown.add(session.cluster);
      this.opts.logger.warn(
        { [LogFields.cluster]: session.cluster, [LogFields.session]: session.id },
        'agent connected for a cluster that is not in the fleet (yet); it gets its state when it appears',
      );
    }
  }

  private nextGeneration(cluster: string): number {
    const g = (this.generations.get(cluster) ?? 0) + 1;
    this.generations.set(cluster, g);
    return g;
  }

  // Sessions are told in slices, each in its own turn of the event loop: a render that
  // changes every cluster must not hold the loop (heartbeats, acks, queries) until every
  // session has been told. A cluster already waiting is not queued twice; its session
  // reads the latest state when its turn comes. Telling a session only queues its send
  // (the send queue has its own budget), so a slice is bounded by the same budget.
  private desiredChanged(clusters: string[]): void {
    for (const cluster of clusters) {
      if (!this.opts.source.get(cluster)) this.cache.forget(cluster);
      if (this.sessions.has(cluster)) this.toNotify.add(cluster);
    }
    this.opts.logger.debug(
      { changed: clusters.length, queued: this.toNotify.size },
      'desired states changed',
    );
    this.scheduleNotify();
  }

  /** A render finished and its states are in the source: first states held for it are sent. */
  rendered(): void {
    this.renderPending = true;
    this.scheduleNotify();
  }

  private scheduleNotify(): void {
    if (this.notifying || this.stopping) return;
    this.notifying = setImmediate(() => this.notifySlice());
  }

  private notifySlice(): void {
    this.notifying = undefined;
    if (this.stopping) return;
    const start = performance.now();
    let n = 0;
    for (const cluster of this.toNotify) {
      if (n > 0 && (n >= this.sliceSize || performance.now() - start >= this.budgetMs)) break;
      n++;
      this.toNotify.delete(cluster);
      this.sessions.get(cluster)?.desiredChanged();
    }
    if (this.toNotify.size > 0) return this.scheduleNotify();
    // Held first states wait for the render; they go once the changed ones are told.
    if (this.renderPending) {
      this.renderPending = false;
      for (const session of this.sessions.values()) session.renderFinished();
    }
  }

  /** Closes every stream of a cluster (its identity was revoked); returns how many. */
  closeCluster(cluster: string, reason: string): number {
    let n = 0;
    for (const [session, peer] of [...this.peers]) {
      if (peer !== cluster) continue;
      session.close(reason, GrpcStatus.UNAUTHENTICATED);
      n++;
    }
    return n;
  }

  /** Closes every open stream with UNAVAILABLE (agents reconnect, to another hub if they have one); returns how many. */
  closeAll(reason: string): number {
    const open = [...this.live];
    for (const s of open) s.close(reason, GrpcStatus.UNAVAILABLE);
    return open.length;
  }

  // Agents dial again soon after a hub that stops on purpose, rather than backing off.
  private redialTrailers(): Record<string, string> | undefined {
    const ms = this.opts.redialMs ?? durations.hubRestartRedial;
    return ms > 0 ? { [RECONNECT_TRAILER]: String(ms) } : undefined;
  }

  /**
   * Closes every session with UNAVAILABLE, asking agents to dial again soon (the hub is
   * restarting, or they move to another replica), and stops listening for changes.
   */
  stop(): void {
    this.stopping = true;
    if (this.notifying) clearImmediate(this.notifying);
    this.notifying = undefined;
    this.toNotify.clear();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    const trailers = this.redialTrailers();
    for (const s of [...this.live]) s.close('hub shutting down', GrpcStatus.UNAVAILABLE, trailers);
    this.heartbeats.stop();
  }
}
