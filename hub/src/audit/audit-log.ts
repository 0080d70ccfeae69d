// The audit log: every write action (cluster add/revoke, token create/revoke, admin
// add/revoke, rollout approve/pause/resume/abort/retry) with who did it (a person or a
// token's name, never a secret), what, to what, when and the result (ok, denied,
// failed). Each record goes to the hub's history at once (`flotilla history --kind
// audit`), to the log, and to its own JetStream stream, FLOTILLA_AUDIT, with its id as
// message id, so it survives restarts and is read back at start. While NATS cannot take
// a record it waits in a bounded queue and is retried.
import { randomUUID } from 'node:crypto';
import type { Logger } from '@flotilla/common';
import { errorMessage } from '@flotilla/common';
import type { AuditEntryRecord } from '../history/history-log.js';

/** The write actions the audit log records. */
export type AuditAction =
  | 'cluster.add'
  | 'cluster.revoke'
  | 'token.create'
  | 'token.revoke'
  | 'admin.add'
  | 'admin.revoke'
  | 'rollout.approve'
  | 'rollout.pause'
  | 'rollout.resume'
  | 'rollout.abort'
  | 'rollout.retry';

/** How a write ended: done, refused for the caller's credentials, or failed. */
export type AuditResult = 'ok' | 'denied' | 'failed';

/** One write action as the audit log stores it. */
export interface AuditRecord extends AuditEntryRecord {
  action: AuditAction;
  result: AuditResult;
}

/** What a write reports to the audit log. */
export interface AuditSink {
  record(entry: {
    actor: string;
    action: AuditAction;
    target: string;
    result: AuditResult;
    /** What happened, in a sentence; never a secret. */
    message: string;
  }): void;
}

/** Where records are stored durably (AuditStream, or a fake). */
export interface AuditWriter {
  /** Resolves once stored; rejects otherwise (the record is retried). */
  publish(record: AuditRecord): Promise<void>;
}

/** Records waiting for NATS at most (10,000); older ones are dropped, counted and logged. */
export const AUDIT_PENDING_MAX = 10_000;
/** Wait before retrying records NATS did not take (2 s). */
export const AUDIT_RETRY_MS = 2_000;

/** Characters kept of an actor or target (256) and of a message (1,024). */
const AUDIT_NAME_MAX = 256;
const AUDIT_MESSAGE_MAX = 1_024;

function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Options of AuditLog. */
export interface AuditLogOptions {
  writer: AuditWriter;
  /** Where the record is shown at once (HistoryLog.addAudit). */
  history: { addAudit(record: AuditEntryRecord): unknown };
  logger: Logger;
  now?: () => number;
}

/** Records writes: history at once, the log, and the durable stream (retried). */
export class AuditLog implements AuditSink {
  private pending: AuditRecord[] = [];
  private flushing = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Records dropped because the queue was full. */
  dropped = 0;

  constructor(private readonly opts: AuditLogOptions) {}

  record(entry: Parameters<AuditSink['record']>[0]): void {
    // Names come from requests: bounded, so a refused call cannot grow the log.
    const r: AuditRecord = {
      id: randomUUID(),
      atMs: (this.opts.now ?? Date.now)(),
      action: entry.action,
      result: entry.result,
      actor: bounded(entry.actor, AUDIT_NAME_MAX),
      target: bounded(entry.target, AUDIT_NAME_MAX),
      message: bounded(entry.message, AUDIT_MESSAGE_MAX),
    };
    this.opts.history.addAudit(r);
    this.opts.logger.info(
      { audit: true, actor: r.actor, action: r.action, target: r.target, result: r.result },
      r.message,
    );
    if (this.pending.length >= AUDIT_PENDING_MAX) {
      this.pending.shift();
      this.dropped++;
      this.opts.logger.error(
        { dropped: this.dropped },
        'audit record dropped: NATS has not taken records for too long',
      );
    }
    this.pending.push(r);
    void this.flush();
  }

  /** Resolves when every record so far is stored, or the attempt failed (it is retried). */
  async flush(): Promise<void> {
    if (this.flushing || this.stopped) return;
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const r = this.pending[0] as AuditRecord;
        await this.opts.writer.publish(r);
        this.pending.shift();
      }
    } catch (err) {
      this.opts.logger.warn(
        { pending: this.pending.length, err: errorMessage(err) },
        'audit records not stored yet: retrying',
      );
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, AUDIT_RETRY_MS);
      this.timer.unref();
    } finally {
      this.flushing = false;
    }
  }

  /** Records not yet stored durably. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** Stops retrying (a last flush is the caller's). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
