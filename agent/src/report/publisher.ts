// Publishes agent events (CloudEvents) to NATS JetStream without ever blocking an apply:
// publish() only enqueues; a single flusher sends in order and, when NATS or the
// FLOTILLA_EVENTS stream (created by the hub) is not there yet, waits and retries.
import {
  Backoff,
  LogFields,
  createEvent,
  errorMessage,
  eventSubject,
  sleep,
} from '@flotilla/common';
import type { EventKind, FlotillaEvent, Logger } from '@flotilla/common';
import { DropOldestBuffer } from './buffer.js';
import { fitEventData } from './fit-event.js';

/** Where events go; the NATS implementation is natsSink(). */
export interface EventSink {
  /** Resolves once the event is stored (JetStream ack); msgID de-duplicates retries. */
  publish(subject: string, data: Uint8Array, msgID: string): Promise<void>;
  /** Flushes and closes. */
  close(): Promise<void>;
}

/** Options of EventPublisher. */
export interface EventPublisherOptions {
  cluster: string;
  logger: Logger;
  /** Events held while NATS is unavailable (default 10 000). */
  bufferSize?: number;
  /** Retry delays while publishing fails (default 500 .. 30 000 ms). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** The clock events are stamped with (default the system clock); the fleet simulator skews it. */
  now?: () => Date;
}

interface Pending {
  subject: string;
  event: FlotillaEvent;
}

/** Buffers and publishes events in order. */
export class EventPublisher {
  private readonly buffer: DropOldestBuffer<Pending>;
  private readonly stopping = new AbortController();
  private readonly backoff: Backoff;
  private flushing: Promise<void> | undefined;
  private reportedDrops = 0;
  private oversizedCount = 0;
  private failing = false;

  constructor(
    private readonly sink: EventSink,
    private readonly opts: EventPublisherOptions,
  ) {
    this.buffer = new DropOldestBuffer(opts.bufferSize ?? 10_000);
    this.backoff = new Backoff({
      initialMs: opts.retryInitialMs ?? 500,
      maxMs: opts.retryMaxMs ?? 30_000,
    });
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
    this.buffer.push({ subject: eventSubject(this.opts.cluster, kind), event });
    if (this.buffer.dropped > this.reportedDrops) {
      this.opts.logger.warn(
        { dropped: this.buffer.dropped, capacity: this.buffer.capacity },
        'event buffer full: oldest events dropped',
      );
      this.reportedDrops = this.buffer.dropped;
    }
    this.flushing ??= this.flush().finally(() => (this.flushing = undefined));
    return event;
  }

  /** Events waiting to be published. */
  get pending(): number {
    return this.buffer.size;
  }

  /** Events dropped because the buffer was full. */
  get dropped(): number {
    return this.buffer.dropped;
  }

  /** Events not sent because they were too big even with their texts cut. */
  get oversized(): number {
    return this.oversizedCount;
  }

  /** Tries to send what is buffered for up to `graceMs`, then closes the sink. */
  async close(graceMs = 2_000): Promise<void> {
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
  }

  private async flush(): Promise<void> {
    const signal = this.stopping.signal;
    for (let next = this.buffer.peek(); next && !signal.aborted; next = this.buffer.peek()) {
      try {
        await this.sink.publish(
          next.subject,
          new TextEncoder().encode(JSON.stringify(next.event)),
          next.event.id,
        );
        // Only the item we sent is removed: a drop-oldest while awaiting may have replaced the head.
        if (this.buffer.peek() === next) this.buffer.shift();
        if (this.failing)
          this.opts.logger.info({ pending: this.buffer.size }, 'publishing events again');
        this.failing = false;
        this.backoff.reset();
      } catch (err) {
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
}
