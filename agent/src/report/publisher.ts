// Publishes agent events (CloudEvents) to NATS JetStream without ever blocking an apply:
// publish() only enqueues; a single flusher sends in order and, when NATS or the
// FLOTILLA_EVENTS stream (created by the hub) is not there yet, waits and retries.
// The queue is bounded in events and bytes; with a buffer directory it is also on disk
// (spool.ts), so what waits survives a restart with the same ids, and JetStream's
// de-duplication stores each event once. Drops are counted and, once NATS takes events
// again, reported to the hub as an events-dropped event. The flusher paces itself below
// the rate the hub accepts from one cluster (EVENT_LIMITS.eventsPerSecond, eventBurst).
import { randomUUID } from 'node:crypto';
import {
  Backoff,
  EVENT_LIMITS,
  LogFields,
  TooLargeError,
  createEvent,
  errorMessage,
  eventSubject,
  sleep,
} from '@flotilla/common';
import type { EventKind, EventsDroppedData, FlotillaEvent, Logger } from '@flotilla/common';
import { DropOldestBuffer } from './buffer.js';
import { fitEventData } from './fit-event.js';
import { EventSpool } from './spool.js';
import type { SpooledEvent } from './spool.js';

/** Where events go; the NATS implementation is natsSink(). */
export interface EventSink {
  /**
   * Resolves once the event is stored (JetStream ack); msgID de-duplicates retries.
   * Rejects with TooLargeError when the event can never be stored (over a size limit).
   */
  publish(subject: string, data: Uint8Array, msgID: string): Promise<void>;
  /** Flushes and closes. */
  close(): Promise<void>;
}

/** Bytes of events the buffer holds at most (16 MiB); the oldest go first beyond it. */
export const EVENT_BUFFER_MAX_BYTES = 16 * 1024 * 1024;
/** Share of the hub's per-cluster rate and burst the agent uses (0.8), leaving room for jitter. */
export const EVENT_PACE_SHARE = 0.8;

/** Options of EventPublisher. */
export interface EventPublisherOptions {
  cluster: string;
  logger: Logger;
  /** Events held while NATS is unavailable (default 10 000). */
  bufferSize?: number;
  /** Bytes of events held while NATS is unavailable (default EVENT_BUFFER_MAX_BYTES, 16 MiB). */
  bufferMaxBytes?: number;
  /** Keep the buffer in DIR/events.log so it survives a restart (default: memory only). */
  bufferDir?: string;
  /** Retry delays while publishing fails (default 500 .. 30 000 ms). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** The clock events are stamped with (default the system clock); the fleet simulator skews it. */
  now?: () => Date;
  /** Events per second sent at most, after a burst (default 0.8 × the hub's limits; Infinity: no pacing). */
  paceEventsPerSecond?: number;
  paceBurst?: number;
}

interface Pending extends SpooledEvent {
  /** The event as JSON: what is sent. */
  json: string;
}

/** Buffers and publishes events in order. */
export class EventPublisher {
  private readonly buffer: DropOldestBuffer<Pending>;
  private spool: EventSpool | undefined;
  private readonly spoolId: string;
  private readonly maxBytes: number;
  private readonly stopping = new AbortController();
  private closing: Promise<void> | undefined;
  private readonly backoff: Backoff;
  private readonly pace: { perSecond: number; burst: number; tokens: number; atMs: number };
  private bytes = 0;
  private flushing: Promise<void> | undefined;
  private loggedDrops = 0;
  private reportedDrops = 0;
  private oversizedCount = 0;
  private failing = false;

  constructor(
    private readonly sink: EventSink,
    private readonly opts: EventPublisherOptions,
  ) {
    this.buffer = new DropOldestBuffer(opts.bufferSize ?? 10_000);
    this.maxBytes = opts.bufferMaxBytes ?? EVENT_BUFFER_MAX_BYTES;
    this.backoff = new Backoff({
      initialMs: opts.retryInitialMs ?? 500,
      maxMs: opts.retryMaxMs ?? 30_000,
    });
    const perSecond = opts.paceEventsPerSecond ?? EVENT_LIMITS.eventsPerSecond * EVENT_PACE_SHARE;
    const burst = opts.paceBurst ?? EVENT_LIMITS.eventBurst * EVENT_PACE_SHARE;
    this.pace = { perSecond, burst, tokens: burst, atMs: Date.now() };
    if (opts.bufferDir === undefined) {
      this.spoolId = randomUUID();
      return;
    }
    const { spool, contents } = EventSpool.open(opts.bufferDir);
    this.spool = spool;
    this.spoolId = spool.id;
    this.buffer.countDropped(contents.dropped);
    this.loggedDrops = contents.dropped;
    this.reportedDrops = contents.reported;
    for (const p of contents.pending) this.enqueue({ ...p, json: JSON.stringify(p.event) }, false);
    if (contents.pending.length > 0 || contents.unreadable > 0)
      opts.logger.info(
        {
          pending: contents.pending.length,
          unreadable: contents.unreadable,
          dropped: contents.dropped,
        },
        'events from before the restart waiting to be published',
      );
    if (this.buffer.size > 0) this.startFlush();
  }

  /**
   * Queues an event of `kind`, its texts within EVENT_LIMITS (fit-event.ts); returns it
   * (its id is the JetStream msgID). Never blocks. An event too big even when cut is
   * logged, counted (oversized) and not sent.
   */
  publish<T>(kind: EventKind, data: T): FlotillaEvent<T> {
    const fitted = fitEventData(data);
    const event = createEvent(this.opts.cluster, kind, fitted?.data ?? data, this.opts.now?.());
    if (!fitted) {
      this.oversizedCount++;
      this.opts.logger.error({ kind }, 'event too big to publish even with its texts cut; dropped');
      return event;
    }
    if (fitted.cut > 0)
      this.opts.logger.debug({ kind, cut: fitted.cut }, 'event texts cut to the event limits');
    const subject = eventSubject(this.opts.cluster, kind);
    const json = JSON.stringify(event);
    const line = EventSpool.line(subject, event);
    this.enqueue({ subject, event, json, bytes: Buffer.byteLength(line) }, true, line);
    if (this.buffer.dropped > this.loggedDrops) {
      this.opts.logger.warn(
        {
          dropped: this.buffer.dropped,
          capacity: this.buffer.capacity,
          capacityBytes: this.maxBytes,
        },
        'event buffer full: oldest events dropped',
      );
      this.loggedDrops = this.buffer.dropped;
    }
    this.startFlush();
    return event;
  }

  /** Events waiting to be published. */
  get pending(): number {
    return this.buffer.size;
  }

  /** Events dropped because the buffer was full (across restarts with a buffer directory). */
  get dropped(): number {
    return this.buffer.dropped;
  }

  /** Events not sent because they were too big even with their texts cut. */
  get oversized(): number {
    return this.oversizedCount;
  }

  /**
   * Tries to send what is buffered for up to `graceMs`, then closes the sink (what is left
   * stays in the buffer file). A second call waits for the first: the buffer file is closed once.
   */
  close(graceMs = 2_000): Promise<void> {
    this.closing ??= this.closeOnce(graceMs);
    return this.closing;
  }

  private async closeOnce(graceMs: number): Promise<void> {
    const flushed = this.flushing ?? Promise.resolve();
    // The grace timer is cancelled as soon as the flush ends, so it never delays exit.
    const grace = new AbortController();
    await Promise.race([flushed, sleep(graceMs, grace.signal)]);
    grace.abort();
    this.stopping.abort();
    await this.sink
      .close()
      .catch((err: unknown) =>
        this.opts.logger.warn({ [LogFields.err]: errorMessage(err) }, 'closing NATS failed'),
      );
    // The flusher writes to the file until its last publish settles.
    await this.flushing;
    this.onDisk((spool) => spool.close());
  }

  // Adds to the buffer (and, when `persist`, to the file), dropping the oldest beyond
  // either bound; each drop is recorded in the file so a restart does not resend it.
  private enqueue(p: Pending, persist: boolean, line?: string): void {
    while (this.buffer.size > 0 && this.bytes + p.bytes > this.maxBytes) {
      const old = this.buffer.dropOldest();
      if (old) this.forget(old, 'dropped');
    }
    const old = this.buffer.push(p);
    if (old) this.forget(old, 'dropped');
    this.bytes += p.bytes;
    if (persist) this.onDisk((spool) => spool.append(line ?? EventSpool.line(p.subject, p.event)));
  }

  private forget(p: Pending, why: 'sent' | 'dropped'): void {
    this.bytes -= p.bytes;
    this.onDisk((spool) =>
      why === 'dropped' ? spool.droppedEvent(p.event.id) : spool.accepted(p.event.id),
    );
  }

  // A buffer file that cannot be written (a full or lost volume) must not stop events: they
  // wait in memory from then on, and the agent says so once.
  private onDisk(op: (spool: EventSpool) => void): void {
    if (!this.spool) return;
    try {
      op(this.spool);
    } catch (err) {
      this.spool = undefined;
      this.opts.logger.error(
        { [LogFields.err]: errorMessage(err), dir: this.opts.bufferDir },
        'cannot write the event buffer file; events wait in memory only until the agent restarts',
      );
    }
  }

  private startFlush(): void {
    this.flushing ??= this.flush().finally(() => (this.flushing = undefined));
  }

  // Milliseconds until the pace allows one more event (0: now, and it is taken).
  private paceDelay(): number {
    const p = this.pace;
    if (!Number.isFinite(p.perSecond)) return 0;
    const now = Date.now();
    p.tokens = Math.min(p.burst, p.tokens + ((now - p.atMs) / 1000) * p.perSecond);
    p.atMs = now;
    if (p.tokens >= 1) {
      p.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - p.tokens) / p.perSecond) * 1000);
  }

  private async flush(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      const next = this.buffer.peek();
      const report = this.buffer.dropped > this.reportedDrops;
      if (!next && !report) return;
      const wait = this.paceDelay();
      if (wait > 0) {
        await sleep(wait, signal);
        continue;
      }
      try {
        // The loss is told first: it matters more than any one event still waiting.
        if (report) await this.reportDrops();
        else if (next) {
          await this.sink.publish(next.subject, new TextEncoder().encode(next.json), next.event.id);
          this.sent(next);
        }
      } catch (err) {
        if (err instanceof TooLargeError && next && !report) {
          // Refused for its size, it would be refused forever: it must not hold up the rest.
          this.oversizedCount++;
          this.opts.logger.error(
            { [LogFields.err]: errorMessage(err), id: next.event.id, subject: next.subject },
            'event refused by NATS as too big; dropped',
          );
          this.sent(next);
          continue;
        }
        const delayMs = this.backoff.next();
        if (!this.failing || this.backoff.attempts % 10 === 0) {
          this.opts.logger.warn(
            { [LogFields.err]: errorMessage(err), pending: this.buffer.size, delayMs },
            'cannot publish events; buffering and retrying',
          );
        }
        this.failing = true;
        await sleep(delayMs, signal);
      }
    }
  }

  private sent(p: Pending): void {
    // Only the item we sent is removed: a drop-oldest while awaiting may have replaced the head.
    if (this.buffer.peek() === p) {
      this.buffer.shift();
      this.forget(p, 'sent');
      this.onDisk((spool) => spool.compactIfNeeded(this.buffer.toArray()));
    }
    if (this.failing)
      this.opts.logger.info({ pending: this.buffer.size }, 'publishing events again');
    this.failing = false;
    this.backoff.reset();
  }

  // Once NATS takes events again, the hub hears how many were lost. The id is derived
  // from the buffer and the count, so a report resent after a restart is stored once.
  private async reportDrops(): Promise<void> {
    const total = this.buffer.dropped;
    const data: EventsDroppedData = {
      dropped: total - this.reportedDrops,
      total,
      capacity: this.buffer.capacity,
      capacityBytes: this.maxBytes,
    };
    const event = {
      ...createEvent(this.opts.cluster, 'events-dropped', data),
      id: `${this.spoolId}-dropped-${total}`,
    };
    await this.sink.publish(
      eventSubject(this.opts.cluster, 'events-dropped'),
      new TextEncoder().encode(JSON.stringify(event)),
      event.id,
    );
    this.reportedDrops = total;
    this.onDisk((spool) => spool.reportedDrops(total));
    this.opts.logger.warn({ dropped: data.dropped, total }, 'reported dropped events to the hub');
    if (this.failing)
      this.opts.logger.info({ pending: this.buffer.size }, 'publishing events again');
    this.failing = false;
    this.backoff.reset();
  }
}
