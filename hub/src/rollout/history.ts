// Rollout history: every transition of every rollout (a stage starting, a cluster getting
// the new revision or failing, a halt, an approval…) as a message in its own JetStream
// stream, FLOTILLA_ROLLOUT_HISTORY, on flotilla.rollouts.<bundle>. Only the hub writes
// there (agents may publish under flotilla.events.<their cluster>.> alone). A transition
// is first saved with its bundle's rollout state (its outbox) and published after, with
// its id as JetStream message id, so a transition decided just before a crash is
// published by the restarted hub, and a re-sent one is not stored twice. A restarted hub
// reads the stream back within the history retention.
import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  StorageType,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import { errorMessage } from '@flotilla/common';
import type { HistoryRecord } from './bundle-state.js';
import { scaleStream } from '../status/jetstream-replicas.js';

/** The stream of rollout transitions. */
export const ROLLOUT_HISTORY_STREAM = 'FLOTILLA_ROLLOUT_HISTORY';
/** Subject prefix of rollout transitions (one subject per bundle). */
export const ROLLOUT_HISTORY_SUBJECT = 'flotilla.rollouts';
/** Bytes the stream keeps at most (256 MiB); the oldest go first. */
export const ROLLOUT_HISTORY_MAX_BYTES = 256 * 1024 * 1024;
/** Records published at once (64); the rest wait their turn. */
const PUBLISH_BATCH = 64;

/** Creates the stream unless it exists; its age limit is the history retention. */
export async function ensureRolloutHistoryStream(
  nc: NatsConnection,
  retentionMs: number,
  replicas = 1,
): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(ROLLOUT_HISTORY_STREAM);
    await scaleStream(nc, ROLLOUT_HISTORY_STREAM, replicas);
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound)
      throw err;
  }
  try {
    await jsm.streams.add({
      name: ROLLOUT_HISTORY_STREAM,
      subjects: [`${ROLLOUT_HISTORY_SUBJECT}.>`],
      storage: StorageType.File,
      max_age: nanos(retentionMs),
      max_bytes: ROLLOUT_HISTORY_MAX_BYTES,
      num_replicas: replicas,
    });
  } catch (err) {
    // Another hub created it between our info and add.
    await jsm.streams.info(ROLLOUT_HISTORY_STREAM).catch(() => {
      throw err;
    });
  }
}

/** Where the controller writes transitions (RolloutHistoryStream, or a fake). */
export interface RolloutHistoryWriter {
  /** Resolves once every record is stored; rejects otherwise (they stay in the outbox). */
  publish(records: readonly HistoryRecord[]): Promise<void>;
}

/** Writes and reads the rollout history stream. */
export class RolloutHistoryStream implements RolloutHistoryWriter {
  private ensured = false;

  constructor(
    private readonly connection: () => Promise<NatsConnection>,
    private readonly retentionMs: number,
    /** Replicas of the stream when created (default 1; hub.yaml nats.replicas). */
    private readonly replicas = 1,
  ) {}

  private async js(): Promise<ReturnType<typeof jetstream>> {
    const nc = await this.connection();
    if (!this.ensured) {
      await ensureRolloutHistoryStream(nc, this.retentionMs, this.replicas);
      this.ensured = true;
    }
    return jetstream(nc);
  }

  async publish(records: readonly HistoryRecord[]): Promise<void> {
    const js = await this.js();
    for (let i = 0; i < records.length; i += PUBLISH_BATCH)
      await Promise.all(
        records.slice(i, i + PUBLISH_BATCH).map((r) =>
          js.publish(`${ROLLOUT_HISTORY_SUBJECT}.${r.bundle}`, JSON.stringify(r), {
            msgID: r.id,
          }),
        ),
      );
  }

  /** Every record newer than sinceMs, oldest first; unreadable ones are skipped. */
  async replay(sinceMs: number, logger: Logger): Promise<HistoryRecord[]> {
    const js = await this.js();
    const consumer = await js.consumers.get(ROLLOUT_HISTORY_STREAM, {
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(sinceMs).toISOString(),
    });
    const out: HistoryRecord[] = [];
    for (;;) {
      const batch = await consumer.fetch({ max_messages: 1_000, expires: 1_000 });
      let got = 0;
      let pending = 0;
      for await (const m of batch) {
        got++;
        pending = m.info.pending;
        try {
          out.push(m.json<HistoryRecord>());
        } catch (err) {
          logger.debug({ seq: m.seq, err: errorMessage(err) }, 'unreadable rollout record skipped');
        }
      }
      if (got === 0 || pending === 0) break;
    }
    await consumer.delete().catch(() => undefined);
    return out;
  }
}
