// Persists the status model in a JetStream KV bucket, one key per cluster, so a
// restarted hub serves the last known status at once. Writes are batched: changed
// records are flushed on an interval, and a failed flush is retried on the next one.
// A flush commits the events checkpoint taken with its records only after the write
// succeeded (persist, then ack), so no acked event is ever missing from the bucket.
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import { errorMessage } from '@flotilla/common';
import type { ClusterRecord } from './model.js';

/** KV bucket holding one ClusterRecord (JSON) per cluster. */
export const STATUS_BUCKET = 'flotilla-status';
/** How often changed records are written (1 s). */
export const STATUS_FLUSH_INTERVAL_MS = 1_000;

/** What persistence needs from the status model. */
export interface PersistableStatus {
  /** Changed records; they may be live objects, so they are serialized at once. */
  takeDirty(): readonly ClusterRecord[];
  markDirty(names: readonly string[]): void;
  restore(records: readonly ClusterRecord[]): void;
}

/** Options of KvStatusPersistence. */
export interface KvStatusPersistenceOptions {
  connection: () => Promise<NatsConnection>;
  /** True while NATS is connected; flushes wait otherwise. */
  isConnected: () => boolean;
  status: PersistableStatus;
  logger: Logger;
  flushIntervalMs?: number;
  /**
   * Taken together with the changed records; committed once they are written
   * (EventsConsumer.checkpoint: acks the events folded into them).
   */
  checkpoint?: () => { commit(): void };
}

/** Opens the bucket (creating it when missing). */
export async function openStatusBucket(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).create(STATUS_BUCKET, { history: 1 });
}

/** Loads and saves the status model from and to the flotilla-status bucket. */
export class KvStatusPersistence {
  private kv: KV | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(private readonly opts: KvStatusPersistenceOptions) {}

  private async bucket(): Promise<KV> {
    this.kv ??= await openStatusBucket(await this.opts.connection());
    return this.kv;
  }

  /** Reads every record into the model; returns how many. */
  async restore(): Promise<number> {
    const kv = await this.bucket();
    const records: ClusterRecord[] = [];
    for await (const key of await kv.keys()) {
      const entry = await kv.get(key);
      if (!entry || entry.operation !== 'PUT') continue;
      try {
        records.push(entry.json<ClusterRecord>());
      } catch (err) {
        this.opts.logger.warn({ key, err: errorMessage(err) }, 'unreadable status record skipped');
      }
    }
    this.opts.status.restore(records);
    return records.length;
  }

  /** Starts periodic flushing. */
  start(): void {
    this.timer ??= setInterval(
      () => void this.flush(),
      this.opts.flushIntervalMs ?? STATUS_FLUSH_INTERVAL_MS,
    );
    this.timer.unref();
  }

  /** Writes the records changed since the last flush. */
  flush(): Promise<void> {
    this.flushing ??= this.doFlush().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async doFlush(): Promise<void> {
    if (!this.opts.isConnected()) return;
    let kv: KV;
    try {
      kv = await this.bucket();
    } catch (err) {
      this.opts.logger.warn(
        { err: errorMessage(err) },
        'opening the status bucket failed, will retry',
      );
      return;
    }
    // Folding is synchronous: the checkpoint and the records taken here, with no await
    // between them, cover exactly the same events.
    const checkpoint = this.opts.checkpoint?.();
    const records = this.opts.status.takeDirty();
    try {
      // Serialized before any await, so later folds cannot leak into this write.
      const puts = records.map((r) => kv.put(r.name, JSON.stringify(r)));
      await Promise.all(puts);
      checkpoint?.commit();
    } catch (err) {
      this.opts.status.markDirty(records.map((r) => r.name));
      this.opts.logger.warn(
        { records: records.length, err: errorMessage(err) },
        'saving status failed, will retry',
      );
    }
  }

  /** Stops flushing after a last flush. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
