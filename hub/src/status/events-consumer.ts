// Reads agent events (and the hub's session events) from JetStream into the status model through a durable consumer,
// so a restarted hub resumes where it stopped. A bad event is counted, logged and
// acked: it must never block the events behind it. Any failure of NATS or the consumer
// is retried with backoff while the hub keeps serving.
// With ackAfterSave (the hub), an event is acked only once the state that includes it is
// saved (persist, then ack: KvStatusPersistence commits a checkpoint after its write), so
// a hub killed at any moment finds every event it had not saved still in the stream;
// folding is idempotent, so the redelivered ones change nothing twice.
// Pulls are bounded in bytes as well as messages (pullMaxBytes): a pull of 1,000 events
// of 900 KB each once made nats-server cut the hub off as a slow consumer.
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  StorageType,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type {
  ConsumerConfig,
  ConsumerInfo,
  ConsumerMessages,
  JetStreamManager,
  JsMsg,
  StreamUpdateConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { EventKind, FlotillaEvent, Logger } from '@flotilla/common';
import {
  Backoff,
  EVENT_LIMITS,
  EVENTS_STREAM,
  EVENTS_SUBJECT_PREFIX,
  LogFields,
  errorMessage,
  parseEvent,
  sleep,
} from '@flotilla/common';
import type { FoldOutcome } from './fleet-status.js';
import { SESSIONS_SUBJECT_PREFIX, checkEventSubject } from './session-events.js';

/** Durable consumer name of the hub's status model (default). */
export const STATUS_CONSUMER = 'flotilla-hub-status';
/** JetStream de-duplication window of the events stream (2 min). */
export const EVENTS_DUPLICATE_WINDOW_MS = 2 * 60_000;
/** How long events are kept (7 d). */
export const EVENTS_MAX_AGE_MS = 7 * 86_400_000;

/**
 * Bytes pulled per request at most (8 MiB), well below nats-server's slow-consumer limit
 * (64 MiB pending to one client); never below one message the server may hold (pullMaxBytes).
 */
export const PULL_MAX_BYTES = 8 * 1024 * 1024;

/**
 * What one pull may carry: PULL_MAX_BYTES, or more when the server accepts bigger
 * messages (max_payload), since a pull must always fit the next message whole.
 */
export function pullMaxBytes(nc: NatsConnection): number {
  // Subject and headers come on top of the payload.
  return Math.max(PULL_MAX_BYTES, (nc.info?.max_payload ?? 0) + 64 * 1024);
}

/** Largest event the stream accepts (EVENT_LIMITS.eventBytes, 64 KiB); a bigger publish is refused. */
export const EVENTS_MAX_MSG_BYTES = EVENT_LIMITS.eventBytes;

/**
 * Events kept per subject, i.e. per cluster and kind (2,000, a week of one event every
 * five minutes): a flood from one cluster pushes out only its own older events of that
 * kind, never another cluster's (the stream's discard policy is "old"). Agents may
 * publish only their own cluster's subjects, one per kind (identity/nats-jwt.ts), so one
 * cluster keeps at most 6 kinds × 2,000 × 64 KiB (750 MiB) however it floods.
 */
export const EVENTS_MAX_MSGS_PER_SUBJECT = 2_000;

/** With AckPolicy.All, ack after this many events (100), or when a burst ends (without ackAfterSave). */
export const ACK_EVERY = 100;

/**
 * Events delivered but not yet acked, at most (50,000): with ackAfterSave they wait for
 * the next save (every second), so this must exceed a second of ingest or JetStream
 * would stall the consumer between saves.
 */
export const MAX_ACK_PENDING = 50_000;

/** With ackAfterSave, ask for a save early after this many unsaved events (20,000). */
export const SAVE_AFTER_EVENTS = 20_000;

/** A point in the stream: commit() acks every event folded before checkpoint() was taken. */
export interface EventsCheckpoint {
  /** Stream sequence of the newest event folded by then (0: none yet): every event up to it is folded. */
  readonly seq: number;
  commit(): void;
}

/** Where folded events go (FleetStatus.foldEvent). */
export type EventSink = (kind: EventKind, event: FlotillaEvent) => FoldOutcome;

/** Options of EventsConsumer. */
export interface EventsConsumerOptions {
  /** Resolves with a live NATS connection (NatsLink.connection). */
  connection: () => Promise<NatsConnection>;
  sink: EventSink;
  logger: Logger;
  /** Durable name (default STATUS_CONSUMER); each hub needs its own (STATUS_CONSUMER-<hubId>). */
  durable?: string;
  /**
   * The server deletes the durable after this long without a client (default never). Set
   * for hub replicas, whose names (pods') come and go: a replica gone that long leaves no
   * consumer behind, and one coming back later folds the stream again from its start
   * (folding is idempotent, by event time).
   */
  inactiveThresholdMs?: number;
  /** Replicas of the events stream when this consumer creates it (default 1; hub.yaml nats.replicas). */
  replicas?: number;
  /** Told about every event that could not be read (for metrics). */
  onMalformed?: () => void;
  /**
   * Ack only through checkpoint().commit(), after the folded state is saved (default
   * false: acked as folded, for a sink with nothing to save).
   */
  ackAfterSave?: boolean;
  /** With ackAfterSave: told when SAVE_AFTER_EVENTS events wait for a save. */
  onBacklog?: () => void;
  /**
   * Asked before an agent's event is even parsed, with the cluster its subject names and
   * when JetStream stored it (ms): false skips it (acked, counted as limited). Session
   * events are never asked. Default: every event is admitted.
   */
  admit?: (cluster: string, storedAtMs: number) => boolean;
  /**
   * Asked once, when the consumer first starts: the stream sequence up to which the
   * restored status holds every event (undefined: unknown). When that is before the
   * durable's ack floor, the consumer resumes right after it, so no event is acked and
   * missing from the status: a hub replica that does not hold the lease acks what it
   * folded without saving it, and the status it restores after a restart is the one the
   * lease holder saved, which may be behind.
   */
  resumeAfter?: () => number | undefined;
}

/** Counters of what the consumer did, for tests, metrics and readiness. */
export interface EventsConsumerStats {
  folded: number;
  stale: number;
  ignored: number;
  malformed: number;
  /** Skipped unread because admit() said no (a cluster over its event rate). */
  limited: number;
}

/** Subjects of the events stream: agents' events and the hub's session events. */
export const EVENTS_STREAM_SUBJECTS: readonly string[] = [
  `${EVENTS_SUBJECT_PREFIX}.>`,
  `${SESSIONS_SUBJECT_PREFIX}.>`,
];

/** The cluster an agent event's subject names (flotilla.events.<cluster>.<kind>); undefined for other subjects. */
export function agentSubjectCluster(subject: string): string | undefined {
  const prefix = `${EVENTS_SUBJECT_PREFIX}.`;
  if (!subject.startsWith(prefix)) return undefined;
  const end = subject.indexOf('.', prefix.length);
  return end > prefix.length ? subject.slice(prefix.length, end) : undefined;
}

/**
 * Creates the events stream unless it exists (agents may create it too: races are fine).
 * A stream made by an older hub, or by an agent, gets the subjects it lacks added and
 * the hub's limits where it has none (or a larger message size); an operator's own
 * per-subject limit is kept.
 */
export async function ensureEventsStream(nc: NatsConnection, replicas = 1): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    const { config } = await jsm.streams.info(EVENTS_STREAM);
    const subjects = config.subjects ?? [];
    const missing = EVENTS_STREAM_SUBJECTS.filter((s) => !subjects.includes(s));
    const update: Partial<StreamUpdateConfig> = {};
    if (missing.length > 0) update.subjects = [...subjects, ...missing];
    if (!(config.max_msg_size > 0 && config.max_msg_size <= EVENTS_MAX_MSG_BYTES))
      update.max_msg_size = EVENTS_MAX_MSG_BYTES;
    if (!(config.max_msgs_per_subject > 0))
      update.max_msgs_per_subject = EVENTS_MAX_MSGS_PER_SUBJECT;
    if ((config.num_replicas ?? 1) < replicas) update.num_replicas = replicas;
    if (Object.keys(update).length > 0) await jsm.streams.update(EVENTS_STREAM, update);
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound)
      throw err;
  }
  try {
    await jsm.streams.add({
      name: EVENTS_STREAM,
      subjects: [...EVENTS_STREAM_SUBJECTS],
      storage: StorageType.File,
      duplicate_window: nanos(EVENTS_DUPLICATE_WINDOW_MS),
      max_age: nanos(EVENTS_MAX_AGE_MS),
      max_msg_size: EVENTS_MAX_MSG_BYTES,
      max_msgs_per_subject: EVENTS_MAX_MSGS_PER_SUBJECT,
      discard: DiscardPolicy.Old,
      num_replicas: replicas,
    });
  } catch (err) {
    // Someone else created it between our info and add.
    await jsm.streams.info(EVENTS_STREAM).catch(() => {
      throw err;
    });
  }
}

/**
 * How long JetStream waits for the ack of a delivered event before redelivering it
 * (10 s): longer than a save (every STATUS_FLUSH_INTERVAL_MS, 1 s) with margin.
 */
export const EVENTS_ACK_WAIT_MS = 10_000;

/**
 * How long one pull waits on the server (5 s; nats.js's default is 30 s). The client
 * expects a heartbeat every half of it and pulls again after two are missed: when the
 * consumer's leader moves to another node of a NATS cluster (a node lost), the pull held
 * by the old leader is gone, and consumption resumes within ~5 s instead of ~30 s.
 */
export const EVENTS_PULL_EXPIRES_MS = 5_000;

function consumerConfig(
  durable: string,
  startSeq?: number,
  inactiveMs?: number,
): Partial<ConsumerConfig> {
  return {
    durable_name: durable,
    ...(inactiveMs ? { inactive_threshold: nanos(inactiveMs) } : {}),
    // One ack covers every earlier message: acking each of 20,000 events/s cost a
    // third of the ingest time in socket writes.
    ack_policy: AckPolicy.All,
    ack_wait: nanos(EVENTS_ACK_WAIT_MS),
    max_ack_pending: MAX_ACK_PENDING,
    ...(startSeq === undefined
      ? { deliver_policy: DeliverPolicy.All }
      : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq }),
  };
}

// Creates the durable consumer. At process start (fresh), events a killed predecessor
// received but never acked would only come back after ack_wait: the consumer is made
// again from its ack floor so they are redelivered at once. Each hub has its own
// durable (STATUS_CONSUMER-<hubId>), so nobody else holds those deliveries.
// With resumeAfter (fresh only), events after that sequence are delivered again even
// when acked: the restored status does not hold them. Returns the sequence delivery
// resumes after (0: from the stream's start).
async function ensureConsumer(
  jsm: JetStreamManager,
  durable: string,
  fresh: boolean,
  inactiveMs?: number,
  resumeAfter?: number,
): Promise<number> {
  let info: ConsumerInfo;
  try {
    info = await jsm.consumers.info(EVENTS_STREAM, durable);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.ConsumerNotFound)
      throw err;
    await jsm.consumers.add(EVENTS_STREAM, consumerConfig(durable, undefined, inactiveMs));
    return 0;
  }
  const outdated =
    info.config.max_ack_pending !== MAX_ACK_PENDING ||
    info.config.ack_wait !== nanos(EVENTS_ACK_WAIT_MS);
  const floor = info.ack_floor.stream_seq;
  const behind = resumeAfter !== undefined && resumeAfter < floor;
  if (fresh && (info.num_ack_pending > 0 || behind)) {
    const after = Math.min(floor, resumeAfter ?? floor);
    await jsm.consumers.delete(EVENTS_STREAM, durable);
    await jsm.consumers.add(EVENTS_STREAM, consumerConfig(durable, after + 1, inactiveMs));
    return after;
  }
  if (outdated) {
    // Made by an older hub: JetStream refuses to create it again with another configuration.
    await jsm.consumers.update(EVENTS_STREAM, durable, {
      max_ack_pending: MAX_ACK_PENDING,
      ack_wait: nanos(EVENTS_ACK_WAIT_MS),
    });
  }
  return floor;
}

// Waiting for NATS must end when the consumer stops, even if NATS never comes.
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('stopped'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Folds FLOTILLA_EVENTS into the status model until stopped. */
export class EventsConsumer {
  private readonly stats: EventsConsumerStats = {
    folded: 0,
    stale: 0,
    ignored: 0,
    malformed: 0,
    limited: 0,
  };
  private readonly abort = new AbortController();
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  private consuming = false;
  private unacked: JsMsg | undefined;
  private unackedCount = 0;
  private ackScheduled = false;
  // Events handled since start, and how many of them a committed checkpoint covers.
  private handled = 0;
  private committed = 0;
  // Stream sequence of the newest event handled.
  private newestSeq = 0;

  constructor(private readonly opts: EventsConsumerOptions) {}

  /** Counters since start. */
  get counters(): Readonly<EventsConsumerStats> {
    return { ...this.stats };
  }

  /** True while a consume loop is running. */
  get active(): boolean {
    return this.consuming;
  }

  /** Starts consuming in the background. */
  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    const backoff = new Backoff({ initialMs: 500, maxMs: 15_000 });
    const durable = this.opts.durable ?? STATUS_CONSUMER;
    let first = true;
    while (!this.abort.signal.aborted) {
      try {
        const nc = await untilAborted(this.opts.connection(), this.abort.signal);
        await ensureEventsStream(nc, this.opts.replicas);
        const jsm = await jetstreamManager(nc);
        const after = await ensureConsumer(
          jsm,
          durable,
          first,
          this.opts.inactiveThresholdMs,
          first ? this.opts.resumeAfter?.() : undefined,
        );
        // What the status held before the first event: every event up to there.
        if (first) this.newestSeq = Math.max(this.newestSeq, after);
        first = false;
        const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, durable);
        // Bounded in bytes: the client then asks for at most 100 messages a pull.
        this.messages = await consumer.consume({
          max_bytes: pullMaxBytes(nc),
          expires: EVENTS_PULL_EXPIRES_MS,
        });
        // stop() came while consume() was being set up and found nothing to close. Not
        // awaited: close() settles only once iterated, and nothing iterates this one.
        if (this.abort.signal.aborted) {
          void this.messages.close();
          break;
        }
        this.consuming = true;
        this.opts.logger.info({ stream: EVENTS_STREAM, durable }, 'consuming agent events');
        backoff.reset();
        for await (const m of this.messages) this.handle(m);
      } catch (err) {
        if (this.abort.signal.aborted) break;
        const delay = backoff.next();
        this.opts.logger.warn(
          { err: errorMessage(err), retryInMs: delay },
          'events consumer failed, retrying',
        );
        await sleep(delay, this.abort.signal);
      } finally {
        this.consuming = false;
      }
    }
  }

  /** The position after every event folded so far; commit() it once their state is saved. */
  checkpoint(): EventsCheckpoint {
    const m = this.unacked;
    const handled = this.handled;
    return {
      seq: this.newestSeq,
      commit: () => {
        if (!m || handled <= this.committed) return;
        // AckPolicy.All: this one ack covers every earlier event as well.
        m.ack();
        this.committed = handled;
        if (this.unacked === m) this.unacked = undefined;
      },
    };
  }

  private ackLater(m: JsMsg): void {
    // A redelivery can be older than what we hold: keep the newest, its ack covers both.
    if (!this.unacked || m.seq >= this.unacked.seq) this.unacked = m;
    this.newestSeq = Math.max(this.newestSeq, m.seq);
    this.handled++;
    if (this.opts.ackAfterSave) {
      if ((this.handled - this.committed) % SAVE_AFTER_EVENTS === 0) this.opts.onBacklog?.();
      return;
    }
    if (++this.unackedCount >= ACK_EVERY) return this.flushAck();
    if (!this.ackScheduled) {
      this.ackScheduled = true;
      setImmediate(() => this.flushAck());
    }
  }

  private flushAck(): void {
    this.ackScheduled = false;
    const m = this.unacked;
    this.unacked = undefined;
    this.unackedCount = 0;
    m?.ack();
  }

  private handle(m: JsMsg): void {
    const cluster = this.opts.admit ? agentSubjectCluster(m.subject) : undefined;
    if (cluster !== undefined && !this.opts.admit?.(cluster, m.info.timestampNanos / 1e6)) {
      // Before parsing: a flood costs the hub a subject split per event, not a JSON parse.
      this.stats.limited++;
      return this.ackLater(m);
    }
    try {
      const { kind, event } = parseEvent(m.data);
      checkEventSubject(m.subject, kind, event);
      const outcome = this.opts.sink(kind, event);
      this.stats[outcome]++;
      this.opts.logger.debug(
        {
          [LogFields.cluster]: event.flotillacluster,
          subject: m.subject,
          seq: m.seq,
          kind,
          outcome,
        },
        'event folded',
      );
    } catch (err) {
      this.stats.malformed++;
      this.opts.onMalformed?.();
      this.opts.logger.warn(
        { subject: m.subject, seq: m.seq, err: errorMessage(err) },
        'malformed event skipped',
      );
    } finally {
      // Acked in every case: a malformed event would otherwise be redelivered forever.
      this.ackLater(m);
    }
  }

  /** Stops consuming (with ackAfterSave, unsaved events stay unacked: save, then commit a checkpoint). */
  async stop(): Promise<void> {
    this.abort.abort();
    if (!this.opts.ackAfterSave) this.flushAck();
    await this.messages?.close();
    await this.loop;
  }
}
