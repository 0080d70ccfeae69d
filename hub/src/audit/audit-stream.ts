// The audit log's durable store: a JetStream stream, FLOTILLA_AUDIT, on
// flotilla.audit.<action>, written by the hub only (agents may publish under
// flotilla.events.<their cluster>.> alone), kept for the history retention and at most
// 64 MiB. A restarted hub reads it back into its history.
import { StorageType, jetstream } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import type { AuditRecord, AuditWriter } from './audit-log.js';
import { ensureStream, replayJson } from '../status/jetstream-replicas.js';

export const AUDIT_STREAM = 'FLOTILLA_AUDIT';
/** Subject prefix of audit records (then the action, e.g. flotilla.audit.cluster.add). */
export const AUDIT_SUBJECT = 'flotilla.audit';
/** Bytes the stream keeps at most (64 MiB); the oldest go first. */
export const AUDIT_MAX_BYTES = 64 * 1024 * 1024;

/** Writes and reads the audit stream. */
export class AuditStream implements AuditWriter {
  private ensured = false;

  constructor(
    private readonly connection: () => Promise<NatsConnection>,
    private readonly retentionMs: number,
    /** Replicas of the stream (default 1; hub.yaml nats.replicas). */
    private readonly replicas = 1,
  ) {}

  private async js(): Promise<ReturnType<typeof jetstream>> {
    const nc = await this.connection();
    if (!this.ensured) {
      await ensureStream(
        nc,
        {
          name: AUDIT_STREAM,
          subjects: [`${AUDIT_SUBJECT}.>`],
          storage: StorageType.File,
          max_age: nanos(this.retentionMs),
          max_bytes: AUDIT_MAX_BYTES,
        },
        this.replicas,
      );
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
    await this.js();
    return replayJson<AuditRecord>(
      await this.connection(),
      AUDIT_STREAM,
      sinceMs,
      logger,
      'audit record',
    );
  }
}
