// The audit log's durable store: a JetStream stream, FLOTILLA_AUDIT, on
// flotilla.audit.<action>, written by the hub only (agents may publish under
// flotilla.events.<their cluster>.> alone), kept for the history retention and at most
// 64 MiB. A restarted hub reads it back into its history.
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
import type { AuditRecord, AuditWriter } from './audit-log.js';

/** The stream of audit records. */
export const AUDIT_STREAM = 'FLOTILLA_AUDIT';
/** Subject prefix of audit records (then the action, e.g. flotilla.audit.cluster.add). */
export const AUDIT_SUBJECT = 'flotilla.audit';
/** Bytes the stream keeps at most (64 MiB); the oldest go first. */
export const AUDIT_MAX_BYTES = 64 * 1024 * 1024;

async function ensureStream(nc: NatsConnection, retentionMs: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(AUDIT_STREAM);
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound)
      throw err;
  }
  try {
    await jsm.streams.add({
      name: AUDIT_STREAM,
      subjects: [`${AUDIT_SUBJECT}.>`],
      storage: StorageType.File,
      max_age: nanos(retentionMs),
      max_bytes: AUDIT_MAX_BYTES,
    });
  } catch (err) {
    // Another hub created it between our info and add.
    await jsm.streams.info(AUDIT_STREAM).catch(() => {
      throw err;
    });
  }
}

/** Writes and reads the audit stream. */
export class AuditStream implements AuditWriter {
  private ensured = false;

  constructor(
    private readonly connection: () => Promise<NatsConnection>,
    private readonly retentionMs: number,
  ) {}

  private async js(): Promise<ReturnType<typeof jetstream>> {
    const nc = await this.connection();
    if (!this.ensured) {
      await ensureStream(nc, this.retentionMs);
      this.ensured = true;
    }
    return jetstream(nc);
  }

  async publish(record: AuditRecord): Promise<void> {
    const js = await this.js();
    await js.publish(`${AUDIT_SUBJECT}.${record.action}`, JSON.stringify(record), {
      msgID: record.id,
    });
  }

  /** Every record newer than sinceMs, oldest first; unreadable ones are skipped. */
  async replay(sinceMs: number, logger: Logger): Promise<AuditRecord[]> {
    const js = await this.js();
    const consumer = await js.consumers.get(AUDIT_STREAM, {
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(sinceMs).toISOString(),
    });
    const out: AuditRecord[] = [];
    for (;;) {
      // Records are small (a few hundred bytes): 1,000 a batch stays well under 1 MiB.
      const batch = await consumer.fetch({ max_messages: 1_000, expires: 1_000 });
      let got = 0;
      let pending = 0;
      for await (const m of batch) {
        got++;
        pending = m.info.pending;
        try {
          out.push(m.json<AuditRecord>());
        } catch (err) {
          logger.debug({ seq: m.seq, err: errorMessage(err) }, 'unreadable audit record skipped');
        }
      }
      if (got === 0 || pending === 0) break;
    }
    await consumer.delete().catch(() => undefined);
    return out;
  }
}
