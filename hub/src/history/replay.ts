// Rebuilds the history at start from FLOTILLA_EVENTS: an ordered (ephemeral) consumer
// reads from now-minus-retention to the end of the stream. The durable status consumer
// is not involved, so replaying never moves its position.
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { EventKind, FlotillaEvent, Logger } from '@flotilla/common';
import { EVENTS_STREAM, errorMessage, parseEvent } from '@flotilla/common';
import { ensureEventsStream } from '../status/events-consumer.js';
import { checkEventSubject } from '../status/session-events.js';

/** Where replayed events go (HistoryLog.add). */
export type HistorySink = (kind: EventKind, event: FlotillaEvent) => boolean;

/** Messages fetched per request while replaying (1,000). */
export const REPLAY_BATCH = 1_000;
/** How long one fetch waits for messages before the replay is taken as done (1 s). */
export const REPLAY_FETCH_EXPIRES_MS = 1_000;

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
  for (;;) {
    const batch = await consumer.fetch({
      max_messages: REPLAY_BATCH,
      expires: REPLAY_FETCH_EXPIRES_MS,
    });
    let got = 0;
    let pending = 0;
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
    if (got === 0 || pending === 0) break;
  }
  await consumer.delete().catch(() => undefined);
  if (bad > 0) logger.warn({ skipped: bad }, 'history replay skipped unreadable events');
  return added;
}
