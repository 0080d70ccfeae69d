// Persists the status model in a JetStream KV bucket, one key per cluster, so a
// restarted hub serves the last known status at once. Writes are batched: changed
// records are flushed on an interval, and a failed flush is retried on the next one.
// A flush commits the events checkpoint taken with its records only after the write
// succeeded (persist, then ack), so no acked event is ever missing from the bucket.
// Failures are isolated per cluster: a record over its size budget is shrunk first
// (record-budget.ts), and one that still cannot be saved while others were is marked
// on its cluster (degraded, with the reason) and retried, and the acks go on: one
// cluster's record must never hold back the events of the whole fleet. Only a flush
// where every write failed (NATS itself in trouble) leaves the events unacked.
// After each save the writer also records the stream sequence the bucket now holds every
// event up to (EVENTS_SEQ_KEY): hub replicas that do not hold the lease ack what they fold
// without saving it, so a replica restarting from the bucket resumes its consumer from
// there, not from its own ack floor, which may be ahead of what the bucket holds.
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import { errorMessage } from '@flotilla/common';
import type { ClusterRecord } from './model.js';
import { STATUS_RECORD_MAX_BYTES, jsonBytes } from './record-budget.js';
import { openKv } from './jetstream-replicas.js';

/** KV bucket holding one ClusterRecord (JSON) per cluster. */
export const STATUS_BUCKET = 'flotilla-status';
/**
 * Key of the bucket's events position (not a cluster: names are DNS labels, no "_"):
 * JSON { seq }, every event up to seq is in the saved records.
 */
export const EVENTS_SEQ_KEY = '_events-seq';
/** How often changed records are written (1 s). */
export const STATUS_FLUSH_INTERVAL_MS = 1_000;

/** Writes a flush starts per turn of the event loop (100). */
export const FLUSH_SLICE = 100;

/** What persistence needs from the status model. */
export interface PersistableStatus {
  /** Changed records; they may be live objects, serialized a slice per turn of the event loop (a later fold only adds to them). */
  takeDirty(): readonly ClusterRecord[];
  markDirty(names: readonly string[]): void;
  /** Clusters whose records were deleted (their keys go too); absent: none ever are. */
  takeRemoved?(): string[];
  markRemoved?(names: readonly string[]): void;
  restore(records: readonly ClusterRecord[]): void;
  /** Shrinks a record until fits(record) or nothing more can go; budget names the limit for the user. */
  shrink(name: string, fits: (rec: ClusterRecord) => boolean, budget: string): void;
  /** Notes that a cluster's record could not be saved, and why. */
  unsaved(name: string, reason: string): void;
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
   * (EventsConsumer.checkpoint: acks the events folded into them). Its seq is saved as
   * the bucket's events position.
   */
  checkpoint?: () => { readonly seq?: number; commit(): void };
  /** Replicas of the bucket when created (default 1; hub.yaml nats.replicas). */
  replicas?: number;
  /**
   * False while another hub replica holds the once-only work lease: events are then acked
   * as folded (the holder saves them) and this replica's changed records wait, to be
   * written once it holds the lease. Default: always writes.
   */
  writes?: () => boolean;
  /** Largest record saved, bytes of JSON (default STATUS_RECORD_MAX_BYTES; at most half of NATS's max payload). */
  maxRecordBytes?: number;
}

/** Opens the bucket (creating it when missing). */
export async function openStatusBucket(nc: NatsConnection, replicas = 1): Promise<KV> {
  return openKv(nc, STATUS_BUCKET, { history: 1 }, replicas);
}

/** Loads and saves the status model from and to the flotilla-status bucket. */
export class KvStatusPersistence {
  private kv: KV | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  // The server's max_payload (0 until connected).
  private maxPayload = 0;
  private restoredSeq: number | undefined;
  // The events position last written (undefined: none since start).
  private savedSeq: number | undefined;

  constructor(private readonly opts: KvStatusPersistenceOptions) {}

  private async bucket(): Promise<KV> {
    if (this.kv) return this.kv;
    const nc = await this.opts.connection();
    this.maxPayload = nc.info?.max_payload ?? 0;
    this.kv = await openStatusBucket(nc, this.opts.replicas);
    return this.kv;
  }

  /**
   * The stream sequence the restored records hold every event up to, as their writer
   * saved it (0 for an empty bucket); undefined before restore() or when records were
   * saved without it (by an older hub).
   */
  get eventsSeq(): number | undefined {
    return this.restoredSeq;
  }

  /** Reads every record into the model (and the events position); returns how many. */
  async restore(): Promise<number> {
    const kv = await this.bucket();
    const records: ClusterRecord[] = [];
    for await (const key of await kv.keys()) {
      const entry = await kv.get(key);
      if (!entry || entry.operation !== 'PUT') continue;
      try {
        if (key === EVENTS_SEQ_KEY) {
          const seq = entry.json<{ seq?: unknown }>().seq;
          if (typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0)
            this.restoredSeq = seq;
          continue;
        }
        records.push(entry.json<ClusterRecord>());
      } catch (err) {
        this.opts.logger.warn({ key, err: errorMessage(err) }, 'unreadable status record skipped');
      }
    }
    // An empty bucket holds no event: a replica that acked events nobody saved folds them again.
    if (this.restoredSeq === undefined && records.length === 0) this.restoredSeq = 0;
    this.opts.status.restore(records);
    return records.length;
  }

  // Keys of deleted records; a failed delete is retried on the next flush.
  private async deleteRemoved(kv: KV): Promise<void> {
    const names = this.opts.status.takeRemoved?.() ?? [];
    const failed: string[] = [];
    await Promise.all(
      names.map(async (name) => {
        try {
          await kv.purge(name);
        } catch {
          failed.push(name);
        }
      }),
    );
    if (failed.length > 0) this.opts.status.markRemoved?.(failed);
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
    if (this.opts.writes && !this.opts.writes()) return checkpoint?.commit();
    const records = this.opts.status.takeDirty();
    const budget = this.recordBudget();
    await this.deleteRemoved(kv);
    const failed: { name: string; err: string }[] = [];
    let serialized = 0;
    const put = async (name: string, json: string | undefined) => {
      try {
        if (json === undefined)
          throw new Error(`record over the ${budget}-byte budget even when shrunk`);
        serialized++;
        await kv.put(name, json);
      } catch (err) {
        failed.push({ name, err: errorMessage(err) });
      }
    };
    // Serialized and started FLUSH_SLICE at a time, one slice per turn of the event loop,
    // all in flight together: a fan-out makes every record dirty, and serializing a
    // thousand records at once (20-30 ms) or starting their requests at once held the loop
    // while queries waited. A record folded further between two slices is written with
    // more than the checkpoint covers, never less: the checkpoint was taken first, and a
    // record holding newer events is what a crash between a save and its ack leaves too
    // (a restart folds those events again, which changes nothing). The fold made it
    // dirty again, so the next flush writes it once more.
    const puts: Promise<void>[] = [];
    for (let i = 0; i < records.length; i++) {
      if (i > 0 && i % FLUSH_SLICE === 0) await new Promise((r) => setImmediate(r));
      const r = records[i] as ClusterRecord;
      puts.push(put(r.name, this.fitted(r, budget)));
    }
    await Promise.all(puts);
    if (failed.length === 0) return this.commit(kv, checkpoint);
    this.opts.status.markDirty(failed.map((f) => f.name));
    if (failed.length === records.length && serialized > 0) {
      // Nothing could be written: NATS is in trouble, not a record. Acks wait.
      this.opts.logger.warn(
        { records: records.length, err: failed[0]?.err },
        'saving status failed, will retry',
      );
      return;
    }
    // Some records were saved: the failures are theirs, not NATS's. Their clusters show
    // it, they are retried, and every other cluster's events are acked.
    for (const f of failed) this.opts.status.unsaved(f.name, f.err);
    this.opts.logger.warn(
      {
        records: records.length,
        unsaved: failed.map((f) => f.name).slice(0, 10),
        err: failed[0]?.err,
      },
      'some status records could not be saved; their clusters are marked degraded',
    );
    await this.commit(kv, checkpoint);
  }

  // Acks the saved events and records the position the bucket holds them up to. The
  // position is written after the records, so it never claims more than they hold; a
  // failed write leaves an older one, which only makes a restart fold a few events again.
  private async commit(
    kv: KV,
    checkpoint: { readonly seq?: number; commit(): void } | undefined,
  ): Promise<void> {
    if (!checkpoint) return;
    checkpoint.commit();
    if (checkpoint.seq === undefined || checkpoint.seq === this.savedSeq) return;
    try {
      await kv.put(EVENTS_SEQ_KEY, JSON.stringify({ seq: checkpoint.seq }));
      this.savedSeq = checkpoint.seq;
    } catch (err) {
      this.opts.logger.warn(
        { err: errorMessage(err) },
        'saving the status events position failed, will retry',
      );
    }
  }

  // Budget of one record: the configured one, and never above half of what the server
  // accepts in one message.
  private recordBudget(): number {
    const max = this.opts.maxRecordBytes ?? STATUS_RECORD_MAX_BYTES;
    return this.maxPayload > 0 ? Math.min(max, Math.floor(this.maxPayload / 2)) : max;
  }

  // The record's JSON within budget (shrinking the record when needed), or undefined.
  private fitted(r: ClusterRecord, budget: number): string | undefined {
    let json = JSON.stringify(r);
    if (jsonBytes(json, budget) <= budget) return json;
    this.opts.status.shrink(
      r.name,
      (rec) => jsonBytes(JSON.stringify(rec), budget) <= budget,
      `${Math.round(budget / 1024)} KiB`,
    );
    json = JSON.stringify(r);
    return jsonBytes(json, budget) <= budget ? json : undefined;
  }

  /** Stops flushing after a last flush. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
