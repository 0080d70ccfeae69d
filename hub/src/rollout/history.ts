// Rollout history: every transition of every rollout (a stage starting, a cluster getting
// the new revision or failing, a halt, an approval…) as a message in its own JetStream
// stream, FLOTILLA_ROLLOUT_HISTORY, on flotilla.rollouts.<bundle>. Only the hub writes
// there (agents may publish under flotilla.events.<their cluster>.> alone). A transition
// is first saved with its bundle's rollout state (its outbox) and published after, with
// its id as JetStream message id, so a transition decided just before a crash is
// published by the restarted hub, and a re-sent one is not stored twice. A restarted hub
// reads the stream back within the history retention.
import { StorageType, jetstream } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import type { HistoryRecord } from './bundle-state.js';
import { ensureStream, replayJson } from '../status/jetstream-replicas.js';

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
  await ensureStream(
    nc,
    {
      name: ROLLOUT_HISTORY_STREAM,
      subjects: [`${ROLLOUT_HISTORY_SUBJECT}.>`],
      storage: StorageType.File,
      max_age: nanos(retentionMs),
      max_bytes: ROLLOUT_HISTORY_MAX_BYTES,
    },
    replicas,
  );
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
    await this.js();
    return replayJson<HistoryRecord>(
      await this.connection(),
      ROLLOUT_HISTORY_STREAM,
      sinceMs,
      logger,
      'rollout record',
    );
  }
}
