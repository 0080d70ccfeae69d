// Rebuilds the history at start from FLOTILLA_EVENTS: an ordered (ephemeral) consumer
// reads from now-minus-retention to the end of the stream. The durable status consumer
// is not involved, so replaying never moves its position. Each fetch is bounded in bytes
// (pullMaxBytes): 1,000 events of 900 KB in one fetch once tripped nats-server's
// slow-consumer limit, and the replay never finished.
import { DeliverPolicy, JetStreamError, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { EventKind, FlotillaEvent, Logger } from '@flotilla/common';
import { EVENTS_STREAM, errorMessage, parseEvent } from '@flotilla/common';
import { ensureEventsStream, pullMaxBytes } from '../status/events-consumer.js';
import { checkEventSubject } from '../status/session-events.js';

/** Where replayed events go (HistoryLog.add). */
export type HistorySink = (kind: EventKind, event: FlotillaEvent) => boolean;

/** How long one fetch waits for messages before the replay is taken as done (1 s). */
export const REPLAY_FETCH_EXPIRES_MS = 1_000;

// nats-server closes a fetch bounded in bytes with a 409 status ("Batch Completed"),
// which the client's fetch reports as an error after the messages it delivered.
function endsFetch(err: unknown): boolean {
  return err instanceof JetStreamError && (err as { code?: unknown }).code === 409;
}

/** Replays events newer than sinceMs into sink; returns how many were added. Bad events are skipped. */
export async function replayHistory(
  nc: NatsConnection,
  sinceMs: number,
  sink: HistorySink,
  logger: Logger,
): Promise<number> {
  await ensureEventsStream(nc);
  const js = jetstream(nc);
  const consumer = await js.consumers.get(EVENTS_STREAM, {
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: new Date(sinceMs).toISOString(),
  });
  let added = 0;
  let bad = 0;
  // With a byte bound the client asks for at most 100 messages a fetch.
  const maxBytes = pullMaxBytes(nc);
  for (;;) {
    const batch = await consumer.fetch({ max_bytes: maxBytes, expires: REPLAY_FETCH_EXPIRES_MS });
    let got = 0;
    let pending = 0;
    try {
      for await (const m of batch) {
        got++;
        pending = m.info.pending;
        try {
          const { kind, event } = parseEvent(m.data);
          checkEventSubject(m.subject, kind, event);
          if (sink(kind, event)) added++;
        } catch (err) {
          bad++;
          if (bad <= 3)
            logger.debug(
              { seq: m.seq, err: errorMessage(err) },
              'unreadable event skipped in history replay',
            );
        }
      }
    } catch (err) {
      if (!endsFetch(err)) throw err;
    }
    if (got === 0 || pending === 0) break;
  }
  await consumer.delete().catch(() => undefined);
  if (bad > 0) logger.warn({ skipped: bad }, 'history replay skipped unreadable events');
  return added;
}
