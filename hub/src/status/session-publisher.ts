// Publishes a session event for every agent stream session that starts or ends. It sits
// beside the stream's SessionObserver and must never slow or fail a stream: events go
// into a bounded buffer at once, a background pump publishes them in order, up to
// SESSION_PUBLISH_WINDOW at a time (retrying with backoff while NATS is down), and when
// the buffer is full the oldest waiting event is dropped, counted and logged with why:
// NATS unreachable, or publishing behind the sessions (a connect storm).
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { FlotillaEvent, Logger } from '@flotilla/common';
import { Backoff, LogFields, errorMessage, sleep } from '@flotilla/common';
import type { Ack__Output } from '@flotilla/proto';
import type { HelloSummary, SessionObserver } from '../stream/types.js';
import { sessionEvent, sessionSubject } from './session-events.js';
import type { SessionEventData, SessionEventKind } from './session-events.js';

/**
 * Session events buffered, at most (20,000: a start and an end for each cluster of a
 * 10,000-cluster fleet, as a hub restart makes); older ones are dropped.
 */
export const SESSION_EVENTS_MAX_BUFFERED = 20_000;

/**
 * Session events published at once (256). One at a time, each waiting for JetStream's
 * acknowledgement, a connect storm of 10,000 agents took longer to record than to admit,
 * and the buffer overflowed.
 */
export const SESSION_PUBLISH_WINDOW = 256;

/** At shutdown, how long buffered session events may take to publish (2 s). */
export const SESSION_EVENTS_STOP_GRACE_MS = 2_000;

/** How long one publish waits for JetStream's acknowledgement (5 s). */
export const SESSION_PUBLISH_TIMEOUT_MS = 5_000;

/** Durable publishing of one message: resolves once stored, rejects otherwise. */
export type DurablePublish = (
  subject: string,
  payload: string,
  msgID: string,
  signal: AbortSignal,
) => Promise<void>;

/** What happened to a session event (for metrics). */
export type SessionEventOutcome = 'published' | 'dropped';

/** Options of SessionEventPublisher. */
export interface SessionEventPublisherOptions {
  publish: DurablePublish;
  /** This hub's id (config status.hubId), recorded in every event. */
  hubId: string;
  logger: Logger;
  /** Buffer bound (default SESSION_EVENTS_MAX_BUFFERED). */
  maxBuffered?: number;
  /** Publishes in flight at once (default SESSION_PUBLISH_WINDOW). */
  window?: number;
  /** Told about every event published or dropped. */
  onOutcome?: (outcome: SessionEventOutcome) => void;
  now?: () => number;
}

/** A DurablePublish over JetStream, on the connection of a NatsLink. */
export function jetStreamPublish(connection: () => Promise<NatsConnection>): DurablePublish {
  return async (subject, payload, msgID, signal) => {
    // Waiting for NATS must end when the publisher stops, even if NATS never comes.
    const nc = await new Promise<NatsConnection>((resolve, reject) => {
      const onAbort = (): void => reject(new Error('stopped'));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = (): void => signal.removeEventListener('abort', onAbort);
      connection().then(
        (c) => (settle(), resolve(c)),
        (err: unknown) => (settle(), reject(err as Error)),
      );
    });
    await jetstream(nc).publish(subject, payload, { msgID, timeout: SESSION_PUBLISH_TIMEOUT_MS });
  };
}

interface Pending {
  subject: string;
  event: FlotillaEvent<SessionEventData>;
}

/** Records session starts and ends as durable events; wrap the stream's observer with observe(). */
export class SessionEventPublisher {
  private readonly queue: Pending[] = [];
  private readonly sessions = new Map<string, HelloSummary>();
  private readonly abort = new AbortController();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly now: () => number;
  private pumping = false;
  /** Events at the head of the queue being published now; never dropped for room. */
  private inFlight = 0;
  /** Why the last publish failed; cleared by the next success. */
  private lastError: string | undefined;
  private droppedSinceLog = 0;
  private publishedCount = 0;
  private droppedCount = 0;

  constructor(private readonly opts: SessionEventPublisherOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Events waiting to be published. */
  get buffered(): number {
    return this.queue.length;
  }

  /** Events published and dropped since start. */
  get counts(): { published: number; dropped: number } {
    return { published: this.publishedCount, dropped: this.droppedCount };
  }

  /** An observer that tells inner first, then records the session event. */
  observe(inner: SessionObserver): SessionObserver {
    return {
      connected: (cluster: string, session: string, hello: HelloSummary) => {
        inner.connected(cluster, session, hello);
        this.sessions.set(session, hello);
        this.record(cluster, 'connected', session, '');
      },
      seen: (cluster: string, session: string, agentClockMs?: number) =>
        inner.seen(cluster, session, agentClockMs),
      acked: (cluster: string, ack: Ack__Output) => inner.acked(cluster, ack),
      disconnected: (cluster: string, session: string, reason: string) => {
        inner.disconnected(cluster, session, reason);
        this.record(cluster, 'disconnected', session, reason);
        this.sessions.delete(session);
      },
    };
  }

  private record(cluster: string, kind: SessionEventKind, session: string, reason: string): void {
    if (this.abort.signal.aborted) return this.drop(cluster);
    try {
      const hello = this.sessions.get(session);
      const data: SessionEventData = {
        session,
        agentVersion: hello?.agentVersion ?? '',
        reason,
        hub: this.opts.hubId,
        appliedRevision: hello?.appliedRevision ?? '',
        appliedDigest: hello?.appliedDigest ?? '',
      };
      const event = sessionEvent(cluster, kind, data, new Date(this.now()));
      const max = this.opts.maxBuffered ?? SESSION_EVENTS_MAX_BUFFERED;
      // Events being published stay at the head; the oldest one only waiting goes (this
      // one, when every buffered event is in flight).
      if (this.queue.length >= max) {
        if (this.inFlight >= this.queue.length) return this.drop(cluster);
        this.queue.splice(this.inFlight, 1);
        this.drop(cluster);
      }
      this.queue.push({ subject: sessionSubject(cluster), event });
      void this.pump();
    } catch (err) {
      // Recording is a side effect of a session: it must never break the stream.
      this.opts.logger.warn(
        { [LogFields.cluster]: cluster, err: errorMessage(err) },
        'session event not recorded',
      );
    }
  }

  private drop(cluster: string): void {
    this.droppedCount++;
    this.opts.onOutcome?.('dropped');
    // One warning per burst of drops (and a count when it ends), not one per event.
    if (this.droppedSinceLog === 0) {
      const max = this.opts.maxBuffered ?? SESSION_EVENTS_MAX_BUFFERED;
      this.opts.logger.warn(
        { [LogFields.cluster]: cluster, buffered: this.queue.length, max, ...this.why() },
        this.lastError === undefined
          ? 'session event dropped: the buffer is full, publishing to JetStream is behind the sessions'
          : 'session event dropped: the buffer is full, NATS is unreachable',
      );
    }
    this.droppedSinceLog++;
  }

  /** The last publish error, for logs (absent when publishing works but is behind). */
  private why(): { err?: string } {
    return this.lastError === undefined ? {} : { err: this.lastError };
  }

  // Publishes the head of the queue, up to `window` events at once, in queue order. Those
  // that fail stay at the head, in order, and are tried again after a backoff.
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    const backoff = new Backoff({ initialMs: 250, maxMs: 10_000 });
    const window = Math.max(1, this.opts.window ?? SESSION_PUBLISH_WINDOW);
    try {
      while (this.queue.length > 0 && !this.abort.signal.aborted) {
        const batch = this.queue.slice(0, window);
        this.inFlight = batch.length;
        const results = await Promise.allSettled(
          batch.map(({ subject, event }) =>
            this.opts.publish(subject, JSON.stringify(event), event.id, this.abort.signal),
          ),
        );
        this.inFlight = 0;
        // The batch is still the queue's head: only the pump takes from it, and drops
        // for room skip what is in flight.
        const failed: Pending[] = [];
        let error: unknown;
        for (const [i, r] of results.entries()) {
          const item = batch[i] as Pending;
          if (r.status === 'fulfilled') {
            this.publishedCount++;
            this.opts.onOutcome?.('published');
          } else if (this.abort.signal.aborted) {
            // Stopped while it was in flight: it counts as dropped, like those left waiting.
            this.drop(item.event.flotillacluster);
          } else {
            failed.push(item);
            error = r.reason;
          }
        }
        this.queue.splice(0, batch.length, ...failed);
        if (this.abort.signal.aborted) break;
        if (failed.length === 0) {
          backoff.reset();
          this.lastError = undefined;
          if (this.droppedSinceLog > 0) {
            this.opts.logger.warn({ dropped: this.droppedSinceLog }, 'session events dropped');
            this.droppedSinceLog = 0;
          }
          continue;
        }
        this.lastError = errorMessage(error);
        const delay = backoff.next();
        this.opts.logger.warn(
          {
            err: this.lastError,
            failed: failed.length,
            buffered: this.queue.length,
            retryInMs: delay,
          },
          'publishing session events failed, retrying',
        );
        await sleep(delay, this.abort.signal);
      }
    } finally {
      this.pumping = false;
      if (this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Resolves once every buffered event is published. */
  idle(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Publishes what is buffered for up to graceMs (the sessions closed by the hub's own
   * shutdown are the last events), then stops; what is left is dropped and counted.
   */
  async stop(graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.idle(),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
    this.abort.abort();
    // Those still in flight are counted by their own outcome (published, or dropped if they fail).
    const left = this.queue.splice(this.inFlight);
    for (const p of left) this.drop(p.event.flotillacluster);
    if (left.length > 0)
      this.opts.logger.warn(
        { dropped: left.length, graceMs, ...this.why() },
        this.lastError === undefined
          ? 'session events not published before shutdown: publishing was behind when the grace ended'
          : 'session events not published before shutdown: NATS unreachable',
      );
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
